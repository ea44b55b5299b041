import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A real Orthanc PACS (1.10, Debian packages `orthanc` and `orthanc-dicomweb`) with its DICOMweb plugin, started
/// for one test in a scratch directory and stopped (and the directory removed) after it.
///
/// Orthanc 1.10 binds its HTTP and DICOM ports on all addresses; `RemoteAccessAllowed: false` keeps every host but
/// this one out.
public final class OrthancTestBed {
    public static let binary = "/usr/sbin/Orthanc"
    public static let plugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

    /// Orthanc and its DICOMweb plugin are installed (else the tests that need them are skipped, and say why).
    public static var available: Bool {
        FileManager.default.isExecutableFile(atPath: binary) && FileManager.default.fileExists(atPath: plugin)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: URL
    public let httpPort: Int
    public let dicomPort: Int
    /// The one user Orthanc takes when started with credentials (HTTP basic authentication).
    public let credentials: (user: String, password: String)?
    /// Orthanc's process id, 0 once it has been waited for.
    var pid: pid_t = 0
    let session: URLSession

    /// The DICOMweb service root, `http://127.0.0.1:PORT/dicom-web`.
    public var baseURL: URL { URL(string: "http://127.0.0.1:\(httpPort)/dicom-web")! }
    /// Orthanc's own REST API root.
    public var restURL: URL { URL(string: "http://127.0.0.1:\(httpPort)")! }
    public var logFile: URL { directory.appendingPathComponent("orthanc.log") }

    /// Starts Orthanc on two free ports and waits until it has started (well under a second; after 30 s it is an
    /// error quoting Orthanc's log) and `/system` answers. With `credentials`, every HTTP request needs them.
    public init(credentials: (user: String, password: String)? = nil) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-orthanc-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.credentials = credentials
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        session = URLSession(configuration: configuration, delegate: RefuseChallenges(), delegateQueue: nil)
        (httpPort, dicomPort) = try Self.freePorts()
        let storage = directory.appendingPathComponent("db").path
        var config: [String: Any] = [
            "Name": "deployctl-test",
            "HttpPort": httpPort,
            "DicomPort": dicomPort,
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": credentials != nil,
            "Plugins": [Self.plugin],
            "DicomWeb": ["Enable": true, "Root": "/dicom-web/"] as [String: Any],
        ]
        if let credentials { config["RegisteredUsers"] = [credentials.user: credentials.password] }
        let configFile = directory.appendingPathComponent("orthanc.json")
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(
            to: configFile)
        try Self.spawn([Self.binary, configFile.path], log: logFile.path, pid: &pid)
        // Readiness is read from Orthanc's log with a blocking poll, not with awaited requests: with every suite
        // running at once on 2 cores, an awaiting task can wait minutes for a thread, which a deadline would take
        // for Orthanc's fault. Then one request checks that /system answers.
        let deadline = Date().addingTimeInterval(30)
        while !logTail(lines: 200).contains("Orthanc has started") {
            if let status = exitStatus(wait: false) {
                throw Failure(description: "Orthanc exited (\(status)):\n\(logTail())")
            }
            guard Date() < deadline else {
                stop()
                throw Failure(description: "Orthanc did not start within 30 s:\n\(logTail())")
            }
            usleep(20_000)
        }
        var request = URLRequest(url: restURL.appendingPathComponent("system"))
        authorize(&request)
        let status = ((try? await session.data(for: request))?.1 as? HTTPURLResponse)?.statusCode
        guard status == 200 else {
            stop()
            throw Failure(
                description: "Orthanc's /system on port \(httpPort) answered \(status.map(String.init) ?? "nothing"):\n"
                    + logTail())
        }
    }

    deinit {
        stop()
        session.finishTasksAndInvalidate()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops Orthanc: SIGTERM, and waits for it to exit (SIGKILL after 10 s). Orthanc 1.10 takes about 3 s: its
    /// HTTP server stops in 2, its DICOM server in 1.
    public func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if exitStatus(wait: false) != nil { return }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        _ = exitStatus(wait: true)
    }

    /// How Orthanc ended, once it has (nil while it runs); the process is reaped then.
    func exitStatus(wait: Bool) -> String? {
        guard pid > 0 else { return "stopped" }
        var status: Int32 = 0
        let result = waitpid(pid, &status, wait ? 0 : WNOHANG)
        if result == 0 { return nil }
        pid = 0
        if result < 0 { return "lost: \(String(cString: strerror(errno)))" }
        let signal = status & 0x7f
        return signal == 0 ? "status \((status >> 8) & 0xff)" : "signal \(signal)"
    }

    /// Starts `arguments` with stdin from /dev/null and stdout and stderr appended to `log`, with no signal blocked
    /// and SIGTERM, SIGINT, SIGHUP and SIGPIPE at their defaults. Not Foundation's Process: it passes on the signal
    /// mask of the thread that starts it, and the threads of Swift's concurrency pool block nearly every signal, so
    /// an Orthanc started from an async test never sees the SIGTERM that should stop it.
    static func spawn(_ arguments: [String], log: String, pid: inout pid_t) throws {
        #if canImport(Glibc)
            var attributes = posix_spawnattr_t()
            var actions = posix_spawn_file_actions_t()
        #else
            var attributes: posix_spawnattr_t?
            var actions: posix_spawn_file_actions_t?
        #endif
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw Failure(description: "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
    }

    /// Stores a DICOM file (POST /instances); Orthanc's ID of the instance.
    @discardableResult
    public func upload(file: URL) async throws -> String {
        var request = URLRequest(url: restURL.appendingPathComponent("instances"))
        request.httpMethod = "POST"
        request.setValue("application/dicom", forHTTPHeaderField: "Content-Type")
        authorize(&request)
        // Orthanc closes an idle kept-alive connection after a second; a test starved of threads for longer then
        // sends on a closed socket ("Broken pipe"). Storing an instance twice is harmless, so such a transport
        // failure is tried again, on a new connection.
        var attempt = 1
        var answer: (Data, URLResponse)?
        while answer == nil {
            do {
                answer = try await session.upload(for: request, fromFile: file)
            } catch let error as NSError where error.domain == NSURLErrorDomain && attempt < 3 {
                attempt += 1
            }
        }
        let (data, response) = answer!
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200,
            let answer = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let id = answer["ID"] as? String
        else {
            throw Failure(
                description: "Orthanc refused \(file.lastPathComponent) (HTTP \(status)): "
                    + String(decoding: data.prefix(500), as: UTF8.self))
        }
        return id
    }

    /// The last lines of Orthanc's log.
    public func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    func authorize(_ request: inout URLRequest) {
        guard let credentials else { return }
        let encoded = Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
        request.setValue("Basic \(encoded)", forHTTPHeaderField: "Authorization")
    }

    /// Two ports free on all addresses (as Orthanc binds them), found by binding port 0 twice at once.
    static func freePorts() throws -> (Int, Int) {
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        var ports: [Int] = []
        for _ in 0..<2 {
            #if os(Linux)
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #else
                let descriptor = socket(AF_INET, SOCK_STREAM, 0)
            #endif
            guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
            sockets.append(descriptor)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr.s_addr = INADDR_ANY
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
                }
            }
            guard bound else { throw Failure(description: "bind: \(String(cString: strerror(errno)))") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return (ports[0], ports[1])
    }
}

/// FoundationNetworking waits for ever on a 401 with a challenge unless a delegate answers it: give up at once.
private final class RefuseChallenges: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        completionHandler(.cancelAuthenticationChallenge, nil)
    }
}
