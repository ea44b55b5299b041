import CLibSSH2
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where and how to reach an SSH host.
public struct SSHEndpoint: Sendable, Equatable {
    public var address: String
    public var port: Int
    public var user: String
    /// The private key file (its public half is derived by libssh2); empty means the SSH agent at $SSH_AUTH_SOCK.
    public var privateKey: String
    public var knownHosts: String
    /// Trust a host whose key is not yet in `knownHosts` and record it there (`--accept-new-host-keys`). A key
    /// that differs from the recorded one is always refused.
    public var acceptNewHostKey: Bool
    public var timeout: Duration

    public init(
        address: String, port: Int = 22, user: String, privateKey: String, knownHosts: String,
        acceptNewHostKey: Bool = false, timeout: Duration = .seconds(15)
    ) {
        self.address = address
        self.port = port
        self.user = user
        self.privateKey = privateKey
        self.knownHosts = knownHosts
        self.acceptNewHostKey = acceptNewHostKey
        self.timeout = timeout
    }
}

/// The result of a remote command.
public struct CommandResult: Sendable, Equatable {
    public var exitStatus: Int32
    public var stdout: String
    public var stderr: String
}

/// One authenticated SSH connection (libssh2, blocking with a timeout). Strict host key checking against
/// known_hosts. Not shared between tasks: each task opens its own session.
public final class SSHSession {
    private let endpoint: SSHEndpoint
    private var socket: Int32 = -1
    private var session: OpaquePointer?
    private var host: String { "\(endpoint.user)@\(endpoint.address):\(endpoint.port)" }

    /// libssh2_init must run once before any session.
    private static let libraryReady: Bool = libssh2_init(0) == 0

    /// Connects, verifies the host key and authenticates with the key file.
    public init(_ endpoint: SSHEndpoint) throws(SSHError) {
        self.endpoint = endpoint
        guard Self.libraryReady else { throw fail(.connect, "libssh2 could not be initialised") }
        try connectSocket()
        guard let session = dctl_session_init() else { throw fail(.handshake, "could not start an SSH session") }
        self.session = session
        libssh2_session_set_blocking(session, 1)
        let milliseconds = endpoint.timeout.components.seconds * 1000
        libssh2_session_set_timeout(session, Int(milliseconds))
        guard libssh2_session_handshake(session, socket) == 0 else {
            throw fail(.handshake, "SSH handshake failed: \(lastError())")
        }
        try verifyHostKey()
        if endpoint.privateKey.isEmpty {
            guard ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] != nil else {
                throw fail(.authentication, "no key file given and no SSH agent (SSH_AUTH_SOCK is not set)")
            }
            guard dctl_userauth_agent(session, endpoint.user) == 0 else {
                throw fail(
                    .authentication, "no key of the SSH agent was accepted for user \(endpoint.user): \(lastError())")
            }
        } else {
            let status = dctl_userauth_publickey_fromfile(session, endpoint.user, nil, endpoint.privateKey, nil)
            guard status == 0 else {
                throw fail(
                    .authentication,
                    "the key \(endpoint.privateKey) was not accepted for user \(endpoint.user): \(lastError())")
            }
        }
    }

    deinit {
        if let session {
            libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, "bye", "")
            libssh2_session_free(session)
        }
        if socket >= 0 { close(socket) }
    }

    /// Runs `command` through the remote shell and collects its output and exit status. `timeout` bounds how long
    /// the command may stay silent (default: the endpoint's timeout).
    public func run(_ command: String, timeout: Duration? = nil) throws(SSHError) -> CommandResult {
        if let timeout, let session {
            libssh2_session_set_timeout(session, Int(timeout.components.seconds * 1000))
        }
        defer {
            if timeout != nil, let session {
                libssh2_session_set_timeout(session, Int(endpoint.timeout.components.seconds * 1000))
            }
        }
        let channel = try openChannel()
        defer { libssh2_channel_free(channel) }
        guard dctl_channel_exec(channel, command) == 0 else {
            throw fail(.channel, "could not start the command: \(lastError())")
        }
        var stdout = Data()
        var stderr = Data()
        var buffer = [CChar](repeating: 0, count: 32 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBufferPointer { dctl_channel_read(channel, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.withUnsafeBytes { stdout.append(contentsOf: $0.prefix(count)) }
            } else if count < 0 {
                throw fail(.channel, "reading the command's output failed: \(lastError())")
            }
            let errorCount = buffer.withUnsafeMutableBufferPointer {
                dctl_channel_read_stderr(channel, $0.baseAddress, $0.count)
            }
            if errorCount > 0 { buffer.withUnsafeBytes { stderr.append(contentsOf: $0.prefix(errorCount)) } }
            if count == 0, errorCount <= 0, libssh2_channel_eof(channel) != 0 { break }
        }
        libssh2_channel_close(channel)
        libssh2_channel_wait_closed(channel)
        return CommandResult(
            exitStatus: libssh2_channel_get_exit_status(channel),
            stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Copies `data` to `path` on the host (SCP), with the given permissions.
    public func upload(_ data: Data, to path: String, mode: Int32 = 0o644) throws(SSHError) {
        var pending: Data? = data
        try scp(to: path, mode: mode, size: Int64(data.count)) {
            defer { pending = nil }
            return pending
        }
    }

    /// Copies the local file at `source` to `path` on the host (SCP), streamed from disk 1 MiB at a time.
    public func upload(file source: String, to path: String, mode: Int32 = 0o644) throws(SSHError) {
        guard let handle = FileHandle(forReadingAtPath: source),
            let size = (try? FileManager.default.attributesOfItem(atPath: source))?[.size] as? NSNumber
        else { throw fail(.transfer, "cannot read \(source)") }
        defer { try? handle.close() }
        try scp(to: path, mode: mode, size: size.int64Value) { try? handle.read(upToCount: 1 << 20) }
    }

    /// One SCP transfer of `size` bytes, taken from `next` until it has given them all.
    private func scp(to path: String, mode: Int32, size: Int64, next: () -> Data?) throws(SSHError) {
        guard let session else { throw fail(.transfer, "not connected") }
        guard let channel = libssh2_scp_send64(session, path, mode, size, 0, 0) else {
            throw fail(.transfer, "could not start copying to \(path): \(lastError())")
        }
        defer { libssh2_channel_free(channel) }
        var sent: Int64 = 0
        while sent < size {
            guard let chunk = next(), !chunk.isEmpty else {
                throw fail(.transfer, "the data ended early while copying it to \(path)")
            }
            var offset = 0
            while offset < chunk.count {
                let written = chunk.withUnsafeBytes { bytes in
                    dctl_channel_write(
                        channel, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self),
                        chunk.count - offset)
                }
                guard written > 0 else { throw fail(.transfer, "copying to \(path) failed: \(lastError())") }
                offset += written
            }
            sent += Int64(chunk.count)
        }
        libssh2_channel_send_eof(channel)
        libssh2_channel_wait_eof(channel)
        libssh2_channel_wait_closed(channel)
    }

    // MARK: Connection

    private func connectSocket() throws(SSHError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(endpoint.address, String(endpoint.port), &hints, &list) == 0, let first = list else {
            throw fail(.connect, "cannot resolve the address '\(endpoint.address)'")
        }
        defer { freeaddrinfo(list) }
        var lastProblem = "no address to try"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            let fd = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd >= 0 {
                if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, timeout: endpoint.timeout) {
                    socket = fd
                    return
                }
                lastProblem = String(cString: strerror(errno))
                close(fd)
            }
            candidate = info.pointee.ai_next
        }
        throw fail(.connect, "cannot connect: \(lastProblem)")
    }

    /// A non-blocking connect bounded by `timeout`, then back to blocking for libssh2.
    private func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t, timeout: Duration)
        -> Bool
    {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        if Glibc.connect(fd, address, length) == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000)
        guard poll(&poller, 1, milliseconds) == 1 else {
            errno = ETIMEDOUT
            return false
        }
        var problem: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &problem, &size)
        errno = problem
        return problem == 0
    }

    private func verifyHostKey() throws(SSHError) {
        guard let session, let hosts = libssh2_knownhost_init(session) else {
            throw fail(.handshake, "could not read known hosts")
        }
        defer { libssh2_knownhost_free(hosts) }
        let fileExists = FileManager.default.fileExists(atPath: endpoint.knownHosts)
        if fileExists, dctl_knownhost_readfile(hosts, endpoint.knownHosts) < 0 {
            throw fail(.handshake, "cannot read the known_hosts file \(endpoint.knownHosts)")
        }
        var length = 0
        var keyType: Int32 = 0
        guard let key = libssh2_session_hostkey(session, &length, &keyType) else {
            throw fail(.handshake, "the host sent no host key")
        }
        let mask = dctl_knownhost_check_mask() | dctl_knownhost_keymask(keyType)
        let result = libssh2_knownhost_checkp(
            hosts, endpoint.address, Int32(endpoint.port), key, length, mask, nil)
        switch result {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            throw fail(
                .hostKeyMismatch,
                "the host key differs from the one recorded in \(endpoint.knownHosts); refusing to connect "
                    + "(if the host was really reinstalled, remove its old entry)")
        default:
            guard endpoint.acceptNewHostKey else {
                throw fail(
                    .hostKeyUnknown,
                    "the host key is not in \(endpoint.knownHosts); add it, or pass --accept-new-host-keys to trust "
                        + "it on first use")
            }
            let name = endpoint.port == 22 ? endpoint.address : "[\(endpoint.address)]:\(endpoint.port)"
            guard
                libssh2_knownhost_addc(
                    hosts, name, nil, key, length, nil, 0,
                    dctl_knownhost_check_mask() | dctl_knownhost_keymask(keyType), nil) == 0,
                dctl_knownhost_writefile(hosts, endpoint.knownHosts) == 0
            else {
                throw fail(.handshake, "could not record the new host key in \(endpoint.knownHosts)")
            }
        }
    }

    private func openChannel() throws(SSHError) -> OpaquePointer {
        guard let session, let channel = dctl_channel_open_session(session) else {
            throw fail(.channel, "could not open a channel: \(lastError())")
        }
        return channel
    }

    private func lastError() -> String {
        guard let session else { return "no session" }
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        libssh2_session_last_error(session, &message, &length, 0)
        return message.map { String(cString: $0) } ?? "unknown error"
    }

    private func fail(_ code: SSHError.Code, _ message: String) -> SSHError {
        SSHError(code: code, host: host, message: message)
    }
}
