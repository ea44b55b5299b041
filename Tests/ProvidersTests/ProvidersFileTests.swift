import Foundation
import TestBeds
import Testing

@testable import Providers

@Suite("Providers file")
struct ProvidersFileTests {
    @Test("an ssh provider is read with defaults for port and user, labels as numbers or text")
    func parse() throws {
        let file = try ProvidersFile.parse(
            """
            providers:
              lab:
                type: ssh
                known_hosts: /etc/deployctl/known_hosts
                hosts:
                  - { name: h1, address: 10.0.0.11, key: /keys/id_ed25519, labels: { cpus: 8, mem: 32 GB, gpus: 1 } }
                  - { name: h2, address: 10.0.0.12, port: 2222, user: admin, key: /keys/id_ed25519 }
            """, file: "providers.yaml")
        guard case .ssh(let lab) = try #require(file.providers["lab"]) else {
            Issue.record("lab is not an ssh provider")
            return
        }
        #expect(lab.knownHosts == "/etc/deployctl/known_hosts")
        #expect(lab.hosts.map(\.name) == ["h1", "h2"])
        #expect(lab.hosts[0].port == 22)
        #expect(lab.hosts[0].user == "root")
        #expect(lab.hosts[0].labels == ["cpus": .number(8), "mem": .text("32 GB"), "gpus": .number(1)])
        #expect(lab.hosts[1].port == 2222)
        #expect(lab.hosts[1].user == "admin")
    }

    @Test(
        "mistakes name the file, the place and the problem",
        arguments: [
            (
                "providers:\n  lab:\n    type: cloudy\n",
                "providers.yaml: providers.lab.type: unknown provider type 'cloudy'; this deployctl knows: ssh, local, openstack"
            ),
            (
                "providers:\n  here:\n    type: local\n    bridge: my-bridge-name-too-long\n",
                "providers.yaml: providers.here.bridge: a bridge name is 1 to 15 letters and digits"
            ),
            (
                "providers:\n  here:\n    type: local\n    subnet: 10.1.2.0/24\n",
                "providers.yaml: providers.here.subnet: give the /24 as its first three octets, such as 10.232.0"
            ),
            (
                "providers:\n  lab:\n    type: ssh\n    hosts:\n      - { name: h1, key: /k }\n",
                "providers.yaml: providers.lab.hosts[0]: missing 'address'"
            ),
            (
                "providers:\n  lab:\n    type: ssh\n    hosts: []\n",
                "providers.yaml: providers.lab.hosts: an ssh provider needs at least one host"
            ),
            (
                "providers:\n  lab:\n    type: ssh\n    hosts:\n      - { name: a, address: x, key: k }\n"
                    + "      - { name: a, address: y, key: k }\n",
                "providers.yaml: providers.lab.hosts: host name 'a' is used twice"
            ),
        ])
    func mistakes(_ text: String, _ expected: String) {
        #expect(throws: ProvidersFileError.self) { _ = try ProvidersFile.parse(text, file: "providers.yaml") }
        do {
            _ = try ProvidersFile.parse(text, file: "providers.yaml")
        } catch {
            #expect(error.description == expected)
        }
    }
}

@Test("a local provider takes its directory, bridge and subnet from the file, else the defaults")
func localProviderSettings() throws {
    let file = try ProvidersFile.parse(
        "providers:\n  here:\n    type: local\n    bridge: br7\n    subnet: 10.9.8\n  there:\n    type: local\n",
        file: "p.yaml", localDirectory: "/home/x/.deployctl/local")
    #expect(
        file.providers["here"]
            == .local(
                LocalProviderConfig(
                    name: "here", directory: "/home/x/.deployctl/local", bridge: "br7", subnet: "10.9.8")))
    #expect(
        file.providers["there"]
            == .local(LocalProviderConfig(name: "there", directory: "/home/x/.deployctl/local")))
    let missing = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/providers.yaml")
    let defaults = try ProvidersFile.loadWithDefaults(missing.path, home: URL(fileURLWithPath: "/h"))
    #expect(defaults.declared.isEmpty)
    #expect(defaults.file.providers == ["local": .local(LocalProviderConfig(directory: "/h/local"))])
}

// In the SSH suite, which is serialized: test beds must not run side by side.
extension SSHSessionTests {
    @Test("the test bed's own providers.yaml checks out, and a stopped host is reported with the reason")
    func checkTestBed() async throws {
        let bed = try SSHTestBed(hosts: 3)
        let file = try ProvidersFile.load(bed.path("providers.yaml"))
        guard case .ssh(let provider) = try #require(file.providers["testbed"]) else { return }
        #expect(provider.hosts.last?.labels["gpus"] == .number(1))
        let healthy = await provider.check(timeout: .seconds(5))
        #expect(healthy.map(\.ok) == [true, true, true])
        #expect(healthy.map { $0.detail.hasPrefix("\(bed.prefix)-h") } == [true, true, true])

        let pid = try String(contentsOfFile: bed.path("h2.pid"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        kill(try #require(Int32(pid)), SIGTERM)
        usleep(300_000)
        let degraded = await provider.check(timeout: .seconds(3))
        #expect(degraded.map(\.ok) == [true, false, true])
        #expect(degraded[1].detail.contains("cannot connect"))
    }
}

@Test("a host without a key file authenticates through the SSH agent")
func hostWithoutKey() throws {
    let file = try ProvidersFile.parse(
        "providers:\n  lab:\n    type: ssh\n    hosts:\n      - { name: a, address: 10.0.0.1 }\n", file: "p.yaml")
    guard case .ssh(let config)? = file.providers["lab"] else {
        Issue.record("lab should be an ssh provider")
        return
    }
    #expect(config.hosts.first?.key == "")
    #expect(config.endpoint(try #require(config.hosts.first)).privateKey == "")
}
