import Foundation
import TestBeds
import Testing

@testable import Orchestrator

@Suite(
    "Ansible playbook operations on real SSH hosts", .serialized,
    .enabled(if: SSHTestBed.available, "needs root for network namespaces and sshd (scripts/testbed/ssh-hosts.sh)"),
    .enabled(if: PlaybookOperation.find("ansible-playbook") != nil, "needs ansible-playbook (pip install ansible-core)")
)
struct PlaybookOperationTests {
    func hosts(_ bed: SSHTestBed) -> [PlaybookOperation.Host] {
        bed.hosts.map {
            PlaybookOperation.Host(name: $0.name, address: $0.address, port: $0.port, user: $0.user, privateKey: $0.key)
        }
    }

    @Test("a playbook runs on every host of the inventory with the inputs as variables")
    func runPlaybook() throws {
        let bed = try SSHTestBed(hosts: 2)
        let playbook = bed.path("configure.yml")
        try """
        - hosts: all
          gather_facts: false
          tasks:
            - name: write the greeting where the test can read it
              ansible.builtin.shell: echo "{{ greeting }} from $(hostname)" > {{ out_dir }}/{{ inventory_hostname }}.txt
            - name: a list input is a list, a map a map
              ansible.builtin.shell: >-
                echo "{{ packages | length }} {{ packages | last }} {{ limits.cpus + 1 }}"
                >> {{ out_dir }}/{{ inventory_hostname }}.txt
        """.write(toFile: playbook, atomically: true, encoding: .utf8)
        var operation = PlaybookOperation(
            name: "Standard.configure", playbook: playbook, hosts: hosts(bed), knownHosts: bed.hosts[0].knownHosts,
            variables: ["greeting": "hello 'study'", "out_dir": bed.directory.path], timeout: .seconds(120))
        operation.variables["packages"] = #"["torch==2.13.0","monai==1.6.1"]"#
        operation.variables["limits"] = #"{"cpus":2}"#
        operation.structuredVariables = ["packages": #"["torch==2.13.0","monai==1.6.1"]"#, "limits": #"{"cpus":2}"#]
        let result = try operation.run()
        #expect(result.succeeded, "\(result.output)")
        for host in bed.hosts {
            let text = try String(contentsOfFile: bed.path("\(host.name).txt"), encoding: .utf8)
            #expect(text == "hello 'study' from \(host.hostname)\n2 monai==1.6.1 3\n")
        }
    }

    @Test(
        "a non-blocking stdin (as an ssh client leaves a shared one) does not reach ansible-playbook, which refuses it")
    func nonBlockingStandardInput() throws {
        let bed = try SSHTestBed(hosts: 1)
        let playbook = bed.path("touch.yml")
        try """
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.command: touch {{ out_dir }}/ran
        """.write(toFile: playbook, atomically: true, encoding: .utf8)
        let operation = PlaybookOperation(
            name: "Standard.create", playbook: playbook, hosts: hosts(bed), knownHosts: bed.hosts[0].knownHosts,
            variables: ["out_dir": bed.directory.path], timeout: .seconds(120))
        // This process's stdin becomes the read end of a pipe marked O_NONBLOCK for the run, then is put back.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        let saved = dup(0)
        dup2(ends[0], 0)
        let result = Result { try operation.run() }
        dup2(saved, 0)
        for fd in [saved, ends[0], ends[1]] { close(fd) }
        let run = try result.get()
        #expect(run.succeeded, "\(run.output)")
        #expect(FileManager.default.fileExists(atPath: bed.path("ran")))
    }

    @Test("with a limit the play runs on one host; the other, in its group, is there to delegate to")
    func limitAndDelegation() throws {
        let bed = try SSHTestBed(hosts: 2)
        let playbook = bed.path("join.yml")
        try """
        - hosts: all
          gather_facts: false
          tasks:
            - name: read the other end's hostname
              ansible.builtin.command: hostname
              delegate_to: "{{ groups['target'][0] }}"
              register: other
              changed_when: false
            - name: record it here
              ansible.builtin.shell: echo "$(hostname) got {{ other.stdout }}" > {{ out_dir }}/{{ inventory_hostname }}.txt
        """.write(toFile: playbook, atomically: true, encoding: .utf8)
        var all = hosts(bed)
        all[0].groups = ["source"]
        all[1].groups = ["target"]
        var operation = PlaybookOperation(
            name: "Configure.post_configure_source", playbook: playbook, hosts: all,
            knownHosts: bed.hosts[0].knownHosts, variables: ["out_dir": bed.directory.path], timeout: .seconds(120))
        operation.limit = all[0].name
        let result = try operation.run()
        #expect(result.succeeded, "\(result.output)")
        let text = try String(contentsOfFile: bed.path("\(all[0].name).txt"), encoding: .utf8)
        #expect(text == "\(bed.hosts[0].hostname) got \(bed.hosts[1].hostname)\n")
        #expect(!FileManager.default.fileExists(atPath: bed.path("\(all[1].name).txt")), "the play ran on the target")
    }

    @Test("a failing task fails the operation with Ansible's account of it")
    func failingPlaybook() throws {
        let bed = try SSHTestBed(hosts: 1)
        let playbook = bed.path("broken.yml")
        try """
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.command: /bin/false
        """.write(toFile: playbook, atomically: true, encoding: .utf8)
        let result = try PlaybookOperation(
            name: "Standard.start", playbook: playbook, hosts: hosts(bed), knownHosts: bed.hosts[0].knownHosts,
            variables: [:], timeout: .seconds(120)
        ).run()
        #expect(!result.succeeded)
        #expect(result.output.contains("FAILED"))
    }

    @Test("the inventory pins keys and checks host keys strictly")
    func inventory() throws {
        let operation = PlaybookOperation(
            name: "x", playbook: "p.yml",
            hosts: [.init(name: "h1", address: "10.231.7.11", user: "root", privateKey: "/k/id_ed25519")],
            knownHosts: "/k/known_hosts", variables: [:])
        let text = String(decoding: try operation.inventory(), as: UTF8.self)
        #expect(text.contains("\"ansible_ssh_private_key_file\" : \"\\/k\\/id_ed25519\""))
        #expect(text.contains("StrictHostKeyChecking=yes"))
        #expect(text.contains("UserKnownHostsFile=\\/k\\/known_hosts"))
        #expect(!text.contains("ansible_become"))
    }

    @Test("another host with its own known_hosts and a login user that is not root: its own file, and become")
    func inventoryPerHost() throws {
        let operation = PlaybookOperation(
            name: "x", playbook: "p.yml",
            hosts: [
                .init(name: "h1", address: "10.231.7.11", user: "root", privateKey: "/k/a"),
                .init(
                    name: "h2", address: "10.231.7.12", user: "debian", privateKey: "/k/b", groups: ["target"],
                    knownHosts: "/k/b_known_hosts"),
            ],
            knownHosts: "/k/a_known_hosts", variables: [:])
        let inventory = try #require(
            try JSONSerialization.jsonObject(with: try operation.inventory()) as? [String: [String: Any]])
        let hosts = try #require(inventory["all"]?["hosts"] as? [String: [String: String]])
        #expect(hosts["h1"]?["ansible_ssh_common_args"] == nil && hosts["h1"]?["ansible_become"] == nil)
        #expect(hosts["h2"]?["ansible_ssh_common_args"]?.contains("UserKnownHostsFile=/k/b_known_hosts") == true)
        #expect(hosts["h2"]?["ansible_become"] == "true")
        let shared = (inventory["all"]?["vars"] as? [String: String])?["ansible_ssh_common_args"]
        #expect(shared?.contains("UserKnownHostsFile=/k/a_known_hosts") == true)
    }
}
