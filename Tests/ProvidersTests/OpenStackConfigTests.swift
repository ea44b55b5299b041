import Foundation
import Testing

@testable import Providers

@Suite("OpenStack credentials, flavors and errors (no cloud needed)")
struct OpenStackConfigTests {
    func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "deployctl-os-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("clouds.yaml: the named cloud, its secrets from secure.yaml, region and interface; OS_CLOUD picks one")
    func cloudsYAML() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        clouds:
          bimcv:
            auth:
              auth_url: https://keystone.example:5000
              username: tech
              project_name: research
              user_domain_name: Default
              project_domain_name: Default
            region_name: RegionTwo
            interface: internal
          other:
            auth_type: v3applicationcredential
            auth:
              auth_url: https://other.example:5000/v3/
              application_credential_id: 0123abcd
              application_credential_secret: s3cret-app
        """.write(toFile: directory + "/clouds.yaml", atomically: true, encoding: .utf8)
        try "clouds:\n  bimcv:\n    auth:\n      password: pa55word\n".write(
            toFile: directory + "/secure.yaml", atomically: true, encoding: .utf8)

        let bimcv = try OpenStackCredentials.resolve(
            cloud: "bimcv", cloudsFile: directory + "/clouds.yaml", environment: [:], home: directory,
            workingDirectory: directory)
        #expect(
            bimcv.method
                == .password(
                    user: "tech", userDomain: "Default", password: "pa55word", project: "research", projectID: nil,
                    projectDomain: "Default"))
        #expect(bimcv.identityURL == "https://keystone.example:5000/v3")
        #expect(bimcv.region == "RegionTwo" && bimcv.interface == "internal")
        #expect(!bimcv.description.contains("pa55word"))

        // OS_CLOUD, with the file found in the working directory.
        let other = try OpenStackCredentials.resolve(
            cloud: nil, cloudsFile: nil, environment: ["OS_CLOUD": "other"], home: "/nonexistent",
            workingDirectory: directory)
        #expect(
            other.method
                == .applicationCredential(
                    id: "0123abcd", name: nil, user: nil, userDomain: "Default", secret: "s3cret-app"))
        #expect(other.identityURL == "https://other.example:5000/v3")
        #expect(!other.description.contains("s3cret-app"))

        let missing = #expect(throws: ProviderError.self) {
            try OpenStackCredentials.resolve(
                cloud: "nope", cloudsFile: directory + "/clouds.yaml", environment: [:], home: directory,
                workingDirectory: directory)
        }
        #expect(missing?.message.contains("has no cloud 'nope'; it has: bimcv, other") == true)
    }

    @Test("next-page links become paths under the endpoint: absolute, Glance's /v2 paths, behind a proxy; else none")
    func nextPageLinks() {
        let nova = "https://cloud.example/compute/v2.1"
        #expect(
            OpenStackSession.relativePath(nova + "/servers/detail?limit=2&marker=a1", base: nova)
                == "/servers/detail?limit=2&marker=a1")
        #expect(
            OpenStackSession.relativePath("http://controller:8774/v2.1/servers/detail?marker=a1", base: nova)
                == "/servers/detail?marker=a1")
        #expect(
            OpenStackSession.relativePath("/v2/images?marker=i9&status=active", base: "https://cloud.example/image/v2")
                == "/images?marker=i9&status=active")
        let cinder = "https://cloud.example/volume/v3/4f2c"
        #expect(
            OpenStackSession.relativePath("http://controller:8776/v3/4f2c/volumes/detail?marker=v7", base: cinder)
                == "/volumes/detail?marker=v7")
        #expect(OpenStackSession.relativePath("http://elsewhere/other/servers?marker=a1", base: nova) == nil)
    }

    @Test("OS_* variables (an openrc) give the same credentials; what is missing is named")
    func environment() throws {
        let credentials = try OpenStackCredentials.resolve(
            cloud: nil, cloudsFile: nil,
            environment: [
                "OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_USERNAME": "tech", "OS_PASSWORD": "pw",
                "OS_PROJECT_NAME": "research", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_REGION_NAME": "RegionOne",
            ], home: "/nonexistent", workingDirectory: "/nonexistent")
        #expect(credentials.region == "RegionOne" && credentials.interface == "public")
        #expect(
            credentials.method
                == .password(
                    user: "tech", userDomain: "Default", password: "pw", project: "research", projectID: nil,
                    projectDomain: "Default"))
        let none = #expect(throws: ProviderError.self) {
            try OpenStackCredentials.resolve(
                cloud: nil, cloudsFile: nil, environment: [:], home: "/nonexistent", workingDirectory: "/nonexistent")
        }
        #expect(none?.message.contains("OS_AUTH_URL") == true)
        let unscoped = #expect(throws: ProviderError.self) {
            try OpenStackCredentials.resolve(
                cloud: nil, cloudsFile: nil,
                environment: ["OS_AUTH_URL": "http://k/v3", "OS_USERNAME": "tech", "OS_PASSWORD": "pw"],
                home: "/nonexistent", workingDirectory: "/nonexistent")
        }
        #expect(unscoped?.message.contains("project_name") == true)
        #expect(unscoped?.message.contains("pw") == false)
    }

    @Test(
        "flavors: the smallest that fits; GPU work only on GPU flavors, CPU work never on them; GPUs from extra specs")
    func flavors() {
        typealias Flavor = OpenStackProvider.Flavor
        #expect(OpenStackProvider.gpus(["pci_passthrough:alias": "a100:2"]) == 2)
        #expect(OpenStackProvider.gpus(["pci_passthrough:alias": "a100:1,t4:1"]) == 2)
        #expect(OpenStackProvider.gpus(["resources:VGPU": "1"]) == 1)
        #expect(OpenStackProvider.gpus(["hw:cpu_policy": "dedicated"]) == 0)
        let all = [
            Flavor(id: "1", name: "m1.small", vcpus: 1, ramMB: 2048, diskGB: 20, gpus: 0),
            Flavor(id: "2", name: "m1.medium", vcpus: 2, ramMB: 4096, diskGB: 40, gpus: 0),
            Flavor(id: "3", name: "m1.large", vcpus: 4, ramMB: 8192, diskGB: 80, gpus: 0),
            Flavor(id: "4", name: "g1.a100", vcpus: 8, ramMB: 32768, diskGB: 100, gpus: 1),
            Flavor(id: "5", name: "g2.a100x2", vcpus: 16, ramMB: 65536, diskGB: 200, gpus: 2),
        ]
        func pick(cpus: Int, memoryGB: Int64, gpus: Int = 0, diskGB: Int64 = 0) -> String? {
            OpenStackProvider.choose(
                all,
                for: ComputeRequest(
                    deployment: "d", instance: "n[0]", name: "n", cpus: cpus, memoryBytes: memoryGB << 30, gpus: gpus,
                    diskBytes: diskGB << 30))?.name
        }
        #expect(pick(cpus: 1, memoryGB: 1) == "m1.small")
        #expect(pick(cpus: 2, memoryGB: 2) == "m1.medium")
        #expect(pick(cpus: 2, memoryGB: 6) == "m1.large")
        #expect(pick(cpus: 2, memoryGB: 4, diskGB: 60) == "m1.large")
        #expect(pick(cpus: 8, memoryGB: 16) == nil)  // only GPU flavors are that large: not for CPU work
        #expect(pick(cpus: 4, memoryGB: 16, gpus: 1) == "g1.a100")
        #expect(pick(cpus: 4, memoryGB: 16, gpus: 2) == "g2.a100x2")
        #expect(pick(cpus: 4, memoryGB: 16, gpus: 4) == nil)
    }

    @Test("quota refusals say which quota and by how much; error bodies of every service are read")
    func errors() {
        let nova = OpenStackResponse(
            status: 403, headers: [:],
            body: [
                "forbidden": [
                    "code": 403, "message": "Quota exceeded for cores: Requested 8, but already used 4 of 8 cores",
                ]
            ])
        #expect(
            OpenStackSession.quotaMessage(.compute, nova)
                == "the project's cores quota is exceeded: 8 requested, 4 of 8 in use, so 4 over; free some or ask "
                + "for a larger quota")
        let cinder = OpenStackResponse(
            status: 413, headers: [:],
            body: [
                "overLimit": [
                    "code": 413,
                    "message":
                        "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 100G, quota is 1000G and 950G has been consumed.",
                ]
            ])
        #expect(
            OpenStackSession.quotaMessage(.volume, cinder)?.contains(
                "100 GB requested, 950 of 1000 GB in use, so 50 GB over") == true)
        let neutron = OpenStackResponse(
            status: 409, headers: [:],
            body: [
                "NeutronError": [
                    "type": "OverQuota", "message": "Quota exceeded for resources: ['floatingip'].", "detail": "",
                ]
            ])
        #expect(OpenStackSession.quotaMessage(.network, neutron)?.contains("['floatingip']") == true)
        #expect(
            OpenStackSession.message(["itemNotFound": ["code": 404, "message": "Instance x could not be found."]])
                == "Instance x could not be found.")
        #expect(
            OpenStackSession.quotaMessage(
                .compute,
                OpenStackResponse(status: 409, headers: [:], body: ["conflictingRequest": ["message": "busy"]])) == nil)
    }

    @Test("the providers file reads an openstack entry and refuses bad values with where they are")
    func providersFile() throws {
        let file = try ProvidersFile.parse(
            """
            providers:
              bimcv:
                type: openstack
                cloud: bimcv
                network: private
                floating_network: public
                image: debian-12
                ssh_user: debian
                ssh_via: private
                boot_timeout: 120
                mount_volumes: false
            """, file: "providers.yaml", localDirectory: "/var/lib/deployctl/local")
        guard case .openstack(let config)? = file.providers["bimcv"] else {
            Issue.record("no openstack provider read")
            return
        }
        #expect(config.cloud == "bimcv" && config.network == "private" && config.floatingNetwork == "public")
        #expect(config.sshVia == "private" && config.bootTimeout == .seconds(120) && !config.mountVolumes)
        #expect(config.keyDirectory == "/var/lib/deployctl/openstack/bimcv")
        let bad = #expect(throws: ProvidersFileError.self) {
            try ProvidersFile.parse(
                "providers:\n  x:\n    type: openstack\n    ssh_via: tunnel\n", file: "p.yaml")
        }
        #expect(bad?.description == "p.yaml: providers.x.ssh_via: ssh_via is `public` or `private`")
    }

    @Test("domains given by id are sent by id; a clouds.yaml that does not parse never shows its lines")
    func domainsAndBrokenFiles() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        clouds:
          byid:
            auth:
              auth_url: http://k:5000
              username: tech
              password: pw
              project_id: 0abc
              user_domain_id: 9f1e
        """.write(toFile: directory + "/clouds.yaml", atomically: true, encoding: .utf8)
        let credentials = try OpenStackCredentials.resolve(
            cloud: "byid", cloudsFile: directory + "/clouds.yaml", environment: [:], home: directory,
            workingDirectory: directory)
        guard case .password(_, let userDomain, _, _, let projectID, _) = credentials.method else {
            Issue.record("not password auth")
            return
        }
        #expect(OpenStackSession.domain(userDomain) == ["id": "9f1e"] && projectID == "0abc")
        #expect(OpenStackSession.domain("Default") == ["name": "Default"])

        try "clouds:\n  bad:\n    auth:\n      password: \"s3cret-unclosed\n".write(
            toFile: directory + "/broken.yaml", atomically: true, encoding: .utf8)
        let broken = #expect(throws: ProviderError.self) {
            try OpenStackCredentials.resolve(
                cloud: "bad", cloudsFile: directory + "/broken.yaml", environment: [:], home: directory,
                workingDirectory: directory)
        }
        #expect(broken?.message.contains("not readable YAML") == true)
        #expect(broken?.message.contains("s3cret") == false)
    }
}
