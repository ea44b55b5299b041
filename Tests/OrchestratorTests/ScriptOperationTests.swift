import Foundation
import Providers
import TestBeds
import Testing

@testable import Orchestrator

@Suite(
    "Script operations on real SSH hosts", .serialized,
    .enabled(if: SSHTestBed.available, "needs root for network namespaces and sshd (scripts/testbed/ssh-hosts.sh)"))
struct ScriptOperationTests {
    func session(_ bed: SSHTestBed) throws -> SSHSession {
        let host = bed.hosts[0]
        return try SSHSession(
            SSHEndpoint(
                address: host.address, user: host.user, privateKey: host.key, knownHosts: host.knownHosts,
                timeout: .seconds(5)))
    }

    @Test("inputs arrive as environment variables, exactly; outputs come back; nothing is left behind")
    func inputsAndOutputs() throws {
        let bed = try SSHTestBed(hosts: 1)
        let work = bed.path("remote-work/front")
        let operation = ScriptOperation(
            name: "Standard.configure",
            script: Data(
                """
                echo "port=$PORT"
                printf '%s' "$MOTTO" > motto.txt
                echo "ENDPOINT=http://$(hostname):$PORT" >> "$DEPLOYCTL_OUTPUTS"
                echo "MOTTO_LENGTH=${#MOTTO}" >> "$DEPLOYCTL_OUTPUTS"
                """.utf8),
            inputs: ["PORT": "8443", "MOTTO": #"it's "quoted", $HOME and `ticks`"#], workDirectory: work)
        let result = try operation.run(on: try session(bed))
        #expect(result.succeeded)
        #expect(result.stdout == "port=8443\n")
        #expect(result.outputs == ["ENDPOINT": "http://\(bed.hosts[0].hostname):8443", "MOTTO_LENGTH": "32"])
        let check = try session(bed).run("cat \(work)/motto.txt; echo; ls -A \(work)")
        #expect(check.stdout == "it's \"quoted\", $HOME and `ticks`\nStandard_configure.sh\nmotto.txt\n")
    }

    @Test("a secret input is never on a command line, and a failing script reports its exit status and stderr")
    func secretsAndFailures() throws {
        let bed = try SSHTestBed(hosts: 1)
        let operation = ScriptOperation(
            name: "Standard.start",
            script: Data(
                """
                ps -eo args > processes.txt
                if grep -qF "$DB_PASSWORD" processes.txt; then echo leaked; fi
                echo "cannot start: port busy" >&2
                exit 4
                """.utf8),
            inputs: ["DB_PASSWORD": "s3cr3t-\(UUID().uuidString)"], workDirectory: bed.path("remote-work/db"))
        let result = try operation.run(on: try session(bed))
        #expect(result.exitStatus == 4)
        #expect(result.stderr == "cannot start: port busy\n")
        #expect(!result.stdout.contains("leaked"))
        #expect(result.outputs.isEmpty)
    }

    @Test("an input that cannot be an environment variable is refused before anything runs")
    func badInputName() throws {
        let bed = try SSHTestBed(hosts: 1)
        let operation = ScriptOperation(
            name: "Standard.create", script: Data("touch ran\n".utf8), inputs: ["2fast": "x"],
            workDirectory: bed.path("remote-work/x"))
        let error = #expect(throws: OrchestratorError.self) { _ = try operation.run(on: try session(bed)) }
        #expect(error?.code == "bad-input-name")
        #expect(!FileManager.default.fileExists(atPath: bed.path("remote-work/x")))
    }

    @Test("outputs parse as NAME=VALUE lines, ignoring noise")
    func outputsParsing() {
        #expect(
            ScriptOperation.parseOutputs("A=1\nnot a pair\n=x\n9X=no\nB=a=b\nA=2\n") == ["A": "2", "B": "a=b"])
    }
}
