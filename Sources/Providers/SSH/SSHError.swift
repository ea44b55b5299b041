/// What went wrong talking to an SSH host: a stable code, a message that names the host and what to do, and the
/// library's own words. Never carries key material or passphrases.
public struct SSHError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case connect = "ssh-connect"
        case handshake = "ssh-handshake"
        case hostKeyMismatch = "ssh-host-key-mismatch"
        case hostKeyUnknown = "ssh-host-key-unknown"
        case authentication = "ssh-authentication"
        case channel = "ssh-channel"
        case transfer = "ssh-transfer"
    }

    public var code: Code
    public var host: String
    public var message: String

    public var description: String { "\(host): \(message)" }
}
