import Foundation
import Providers

/// A TOSCA operation implemented by a shell script, run on its host node over SSH.
///
/// Inputs reach the script as environment variables through a file readable only by the remote user (mode 0600),
/// never on a command line where `ps` would show them; the file is removed when the script ends. The script
/// reports operation outputs (for `get_operation_output`) by writing `NAME=VALUE` lines to the file named by
/// `$DEPLOYCTL_OUTPUTS`.
public struct ScriptOperation: Sendable {
    /// `Interface.operation`, such as `Standard.configure`.
    public var name: String
    public var script: Data
    public var inputs: [String: String]
    /// A directory on the host for this resource's files (created if missing); the script runs in it.
    public var workDirectory: String
    /// The base name of the operation's files there (script, environment, outputs): unique among operations that
    /// may run at once in the same directory. Defaults to the operation's name.
    public var fileBase: String?
    /// The login user is not root: the work directory is made (and handed to the user) and the script runs as root
    /// through `sudo -n`, as cloud images' default users (debian, ubuntu, cloud-user) have it, with the session's
    /// `SSH_CONNECTION` and `SSH_CLIENT`.
    public var elevate = false

    public init(name: String, script: Data, inputs: [String: String], workDirectory: String) {
        self.name = name
        self.script = script
        self.inputs = inputs
        self.workDirectory = workDirectory
    }

    public struct Result: Sendable, Equatable {
        public var exitStatus: Int32
        public var stdout: String
        public var stderr: String
        public var outputs: [String: String]

        public var succeeded: Bool { exitStatus == 0 }
    }

    /// Uploads and runs the script; a non-zero exit is a result, not an error (the caller decides: degraded).
    public func run(on session: SSHSession, timeout: Duration? = nil) throws -> Result {
        for key in inputs.keys where !Self.isEnvironmentName(key) {
            throw OrchestratorError(
                "bad-input-name",
                "operation \(name): input '\(key)' cannot be an environment variable name (letters, digits and _, "
                    + "not starting with a digit)")
        }
        let safeName = (fileBase ?? name).map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let base = "\(workDirectory)/\(String(safeName))"
        let scriptPath = base + ".sh"
        let environmentPath = base + ".env"
        let outputsPath = base + ".outputs"
        var environment = inputs.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuote($0.value))" }
        environment.append("DEPLOYCTL_OUTPUTS=\(shellQuote(outputsPath))")
        do {
            let prepare = "mkdir -p \(shellQuote(workDirectory)) && chmod 700 \(shellQuote(workDirectory))"
            if elevate {
                let made = try session.run(
                    "sudo -n sh -c \(shellQuote(prepare + " && chown \"$SUDO_UID\" \(shellQuote(workDirectory))"))")
                guard made.exitStatus == 0 else {
                    throw OrchestratorError(
                        "operation-sudo",
                        "operation \(name): the login user cannot use sudo without a password on this host: "
                            + made.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            } else {
                _ = try session.run(prepare)
            }
            try session.upload(
                Data((environment.joined(separator: "\n") + "\n").utf8), to: environmentPath, mode: 0o600)
            try session.upload(script, to: scriptPath, mode: 0o700)
            let command = """
                rm -f \(shellQuote(outputsPath)); cd \(shellQuote(workDirectory)) && \
                (set -a; . \(shellQuote(environmentPath)); rm -f \(shellQuote(environmentPath)); set +a; \
                exec /bin/sh \(shellQuote(scriptPath)))
                """
            // Through sudo the script still sees the SSH session's own variables (sudo resets the environment).
            let elevated =
                "sudo -n env SSH_CONNECTION=\"$SSH_CONNECTION\" SSH_CLIENT=\"$SSH_CLIENT\" sh -c \(shellQuote(command))"
            let result = try session.run(elevate ? elevated : command, timeout: timeout)
            let outputs = try session.run(
                "cat \(shellQuote(outputsPath)) 2>/dev/null; rm -f \(shellQuote(outputsPath))")
            return Result(
                exitStatus: result.exitStatus, stdout: result.stdout, stderr: result.stderr,
                outputs: Self.parseOutputs(outputs.stdout))
        } catch let error as OrchestratorError {
            throw error
        } catch {
            throw OrchestratorError("operation-unreachable", "operation \(name) could not run: \(error)")
        }
    }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    /// `NAME=VALUE` lines; later lines win, blank and malformed lines are ignored.
    static func parseOutputs(_ text: String) -> [String: String] {
        var outputs: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let equals = line.firstIndex(of: "="), equals != line.startIndex else { continue }
            let key = String(line[..<equals])
            guard isEnvironmentName(key) else { continue }
            outputs[key] = String(line[line.index(after: equals)...])
        }
        return outputs
    }
}
