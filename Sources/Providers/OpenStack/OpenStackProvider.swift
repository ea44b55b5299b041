import Foundation
import Synchronization

/// Nodes as Nova servers, volumes as Cinder volumes attached through Nova, public endpoints through Neutron
/// floating IPs.
///
/// Everything a node needs is named after the node's ledger name, so that deleting by that name finds it all again
/// after a crash: its server (metadata `deployctl_*`, tag `deployctl`), its keypair and security group (both named
/// after it), its floating IP (described by it) and its key and address on this machine (under `keyDirectory`).
/// Deletion goes in order — detach volumes, disassociate and release floating IPs, delete the server and wait until
/// it is gone, then its security group and keypair — and treats 404 as done.
public final class OpenStackProvider: Provider {
    public let name: String
    let config: OpenStackProviderConfig
    let api: OpenStackSession
    /// Polling period while waiting for a status.
    let poll: Duration
    let groupCreation = OnceByName()

    static let tag = "deployctl"

    public init(
        config: OpenStackProviderConfig, credentials: OpenStackCredentials, poll: Duration = .milliseconds(500)
    ) {
        name = config.name
        self.config = config
        var credentials = credentials
        if let region = config.region { credentials.region = region }
        if let interface = config.interface { credentials.interface = interface }
        api = OpenStackSession(provider: config.name, credentials: credentials)
        self.poll = poll
    }

    /// Credentials from the configuration's cloud, $OS_CLOUD or the OS_* variables.
    public convenience init(config: OpenStackProviderConfig) throws(ProviderError) {
        self.init(
            config: config,
            credentials: try OpenStackCredentials.resolve(cloud: config.cloud, cloudsFile: config.cloudsFile))
    }

    func fail(_ code: String, _ message: String) -> ProviderError { ProviderError(code, provider: name, message) }

    // MARK: Compute

    /// Nova's limit on user data, base64-encoded.
    static let userDataLimit = 65535

    public func createCompute(_ request: ComputeRequest) async throws(ProviderError) -> ProvisionedCompute {
        let files = try nodeFiles(request.name)
        var server = try await findServer(name: request.name, id: nil)
        var networks: [(id: String, name: String)]?
        if server == nil {
            // What the request needs is found first: a request the cloud cannot satisfy makes nothing.
            let userData = request.userData.map { Data($0.utf8).base64EncodedString() }
            if let userData, userData.utf8.count > Self.userDataLimit {
                throw fail(
                    "openstack-user-data",
                    "the user data of \(request.name) is \(userData.utf8.count) bytes once base64-encoded; Nova "
                        + "takes at most \(Self.userDataLimit) (about 48 KiB before encoding)")
            }
            let flavor = try await chooseFlavor(request)
            let image = try await chooseImage(request)
            let chosen = try await chooseNetworks(request)
            networks = chosen
            if request.isPublic { _ = try await floatingNetwork() }
            // Record-before-create on this side too: the security group (described with the deployment) comes
            // before the server, so that `resources` finds the node from it whatever happens next.
            let group = try await ensureSecurityGroup(request, peers: try await subnetRanges(of: chosen))
            try await ensureKeypair(request.name, publicKey: files.publicKey)
            var body: [String: JSON] = [
                "name": .string(request.name),
                "flavorRef": .string(flavor.id),
                "imageRef": .string(image),
                "key_name": .string(request.name),
                "networks": .array(chosen.map { ["uuid": .string($0.id)] }),
                "security_groups": [["name": .string(group)]],
                "metadata": .object(Self.metadata(request).mapValues(JSON.string)),
            ]
            if try await api.minor(.compute) >= 52 { body["tags"] = [.string(Self.tag)] }
            if let userData { body["user_data"] = .string(userData) }
            var envelope: [String: JSON] = ["server": .object(body)]
            if let group = request.antiAffinityGroup {
                let id = try await ensureServerGroup(
                    Self.serverGroupName(request.deployment, group), strict: request.strictAntiAffinity)
                envelope["os:scheduler_hints"] = ["group": .string(id)]
            }
            server = try await postRecovering(
                what: "server \(request.name)",
                find: { () async throws(ProviderError) in try await self.findServer(name: request.name, id: nil) },
                post: { () async throws(ProviderError) in
                    let created = try await self.api.call(
                        .compute, "POST", "/servers", body: .object(envelope),
                        what: "creating server \(request.name) for \(request.instance)")
                    guard let id = created.body["server"]["id"].string else {
                        throw self.fail("openstack-request", "Nova created \(request.name) but gave no id")
                    }
                    return try await self.getServer(id)
                })
        }
        guard var current = server else {
            throw fail("openstack-request", "server \(request.name) vanished right after it was created")
        }
        current = try await waitActive(current, request: request)
        let id = current["id"].string ?? ""
        var publicAddress: String?
        if request.isPublic {
            publicAddress = try await ensureFloatingIP(serverID: id, name: request.name)
            current = try await getServer(id) ?? current
        }
        // The node's address is its first network's (the template's first port, or the provider's network); a server
        // found already made (a rerun) has its networks looked up now.
        if networks == nil { networks = try await chooseNetworks(request) }
        let first = networks?.first?.name
        guard
            let privateAddress = Self.addresses(current, type: "fixed", network: first).first
                ?? Self.addresses(current, type: "fixed").first
        else {
            throw fail("openstack-request", "server \(request.name) is ACTIVE but has no fixed address")
        }
        let reach = config.sshVia == "private" ? privateAddress : (publicAddress ?? privateAddress)
        try write(reach + "\n", to: files.directory + "/address")
        try write(id + "\n", to: files.directory + "/server-id")
        return ProvisionedCompute(providerID: id, privateAddress: privateAddress, publicAddress: publicAddress)
    }

    static func metadata(_ request: ComputeRequest) -> [String: String] {
        [
            "deployctl_deployment": request.deployment, "deployctl_instance": request.instance,
            "deployctl_name": request.name,
        ]
    }

    private func waitActive(_ server: JSON, request: ComputeRequest) async throws(ProviderError) -> JSON {
        var server = server
        let id = server["id"].string ?? ""
        let deadline = ContinuousClock.now + config.bootTimeout
        while true {
            switch server["status"].string ?? "" {
            case "ACTIVE":
                return server
            case "ERROR":
                let fault = server["fault"]["message"].string ?? "Nova gave no fault"
                // An ERROR server holds quota and a port: remove it now; the next run makes a new one.
                try? await deleteCompute(name: request.name, providerID: id)
                throw fail(
                    "server-error",
                    "server \(request.name) for \(request.instance) went to ERROR; Nova's fault: \(fault)")
            default:
                break
            }
            guard ContinuousClock.now < deadline else {
                throw fail(
                    "boot-timeout",
                    "server \(request.name) for \(request.instance) is still \(server["status"].string ?? "?") after "
                        + "\(config.bootTimeout); it is left for `down` to remove")
            }
            try await sleep()
            guard let next = try await getServer(id) else {
                throw fail("openstack-request", "server \(request.name) disappeared while it was building")
            }
            server = next
        }
    }

    func sleep() async throws(ProviderError) {
        do { try await Task.sleep(for: poll) } catch { throw fail("cancelled", "cancelled") }
    }

    func getServer(_ id: String) async throws(ProviderError) -> JSON? {
        let response = try await api.call(
            .compute, "GET", "/servers/\(id)", expect: [200, 404], what: "reading server \(id)")
        // A soft-deleted server (reclaim_instance_interval) is gone for deployctl.
        guard response.status != 404, response.body["server"]["status"].string != "SOFT_DELETED" else { return nil }
        return response.body["server"]
    }

    /// The server of that name (Nova's name filter is a regular expression: anchored and escaped here).
    func findServer(name: String, id: String?) async throws(ProviderError) -> JSON? {
        if let id, !id.isEmpty, let server = try await getServer(id), server["name"].string == name { return server }
        let pattern = "^" + NSRegularExpression.escapedPattern(for: name) + "$"
        let response = try await api.call(
            .compute, "GET", "/servers/detail?name=\(Self.query(pattern))", what: "looking for server \(name)")
        let matches = response.body["servers"].array.filter {
            $0["name"].string == name && !["DELETED", "SOFT_DELETED"].contains($0["status"].string ?? "")
        }
        return matches.first
    }

    /// POSTs something that must not be made twice: after an answer that leaves it unknown whether the first try
    /// made it (a dropped connection, a 5xx, a 409), looks for it by name before trying again.
    func postRecovering(
        what: String, find: () async throws(ProviderError) -> JSON?, post: () async throws(ProviderError) -> JSON?
    ) async throws(ProviderError) -> JSON? {
        var attempt = 1
        while true {
            do {
                return try await post()
            } catch
                where attempt < api.attempts
                && (error.code == "transient" || error.code == "openstack-409"
                    || (Int(error.code.dropFirst("openstack-".count)) ?? 0) >= 500)
            {
                if let made = try await find() { return made }
                do { try await Task.sleep(for: .milliseconds(Int(api.baseDelay * 1000) << (attempt - 1))) } catch {
                    throw fail("cancelled", "cancelled while making \(what)")
                }
                attempt += 1
            }
        }
    }

    static func query(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    static func addresses(_ server: JSON, type: String, network wanted: String? = nil) -> [String] {
        server["addresses"].object.keys.sorted().filter { wanted == nil || $0 == wanted }.flatMap { network in
            server["addresses"][network].array.compactMap { address -> String? in
                guard address["OS-EXT-IPS:type"].string ?? "fixed" == type, address["version"].int ?? 4 == 4 else {
                    return nil
                }
                return address["addr"].string
            }
        }
    }

    public func deleteCompute(name resource: String, providerID: String?) async throws(ProviderError) {
        // The node's server group, from its security group's description: removed once it has no member left.
        let group = try await securityGroups(named: resource).first?["description"].string.flatMap { text in
            text.range(of: " group=").map { String(text[$0.upperBound...]) }
        }
        var servers: [JSON] = []
        while let server = try await findServer(name: resource, id: servers.isEmpty ? providerID : nil),
            let id = server["id"].string, !servers.contains(where: { $0["id"].string == id })
        {
            servers.append(server)
            try await deleteServer(server, name: resource)
        }
        if servers.isEmpty { try await releaseFloatingIPs(name: resource) }
        try await deleteSecurityGroup(resource)
        _ = try await api.call(
            .compute, "DELETE", "/os-keypairs/\(Self.query(resource))", expect: [202, 204, 404],
            what: "deleting keypair \(resource)")
        if let group {
            for found in try await serverGroups(named: group) where found["members"].array.isEmpty {
                guard let id = found["id"].string else { continue }
                _ = try await api.call(
                    .compute, "DELETE", "/os-server-groups/\(id)", expect: [204, 404],
                    what: "deleting server group \(group)")
            }
        }
        try? FileManager.default.removeItem(atPath: nodeDirectory(resource))
    }

    /// Volumes first (their data outlives the server), then the floating IP, then the server itself, waiting
    /// until Nova no longer has it.
    private func deleteServer(_ server: JSON, name resource: String) async throws(ProviderError) {
        guard let id = server["id"].string else { return }
        for (key, record) in server["metadata"].object where key.hasPrefix(Self.attachKey) {
            let volumeID = String(key.dropFirst(Self.attachKey.count))
            try await detach(serverID: id, volumeID: volumeID, record: AttachRecord(record.string ?? ""))
        }
        try await releaseFloatingIPs(name: resource)
        _ = try await api.call(
            .compute, "DELETE", "/servers/\(id)", expect: [204, 404], what: "deleting server \(resource)")
        let deadline = ContinuousClock.now + config.bootTimeout
        while try await getServer(id) != nil {
            guard ContinuousClock.now < deadline else {
                throw fail("delete-timeout", "server \(resource) is still there \(config.bootTimeout) after delete")
            }
            try await sleep()
        }
    }

    public func access(computeID: String, name resource: String) throws(ProviderError) -> HostAccess {
        let directory = nodeDirectory(nodeName(serverID: computeID) ?? resource)
        guard let address = try? String(contentsOfFile: directory + "/address", encoding: .utf8) else {
            throw fail("unknown-node", "no OpenStack node '\(resource)' (\(computeID)) was made from this machine")
        }
        return HostAccess(
            endpoint: SSHEndpoint(
                address: address.trimmingCharacters(in: .whitespacesAndNewlines), port: config.sshPort,
                user: config.sshUser, privateKey: directory + "/id_ed25519", knownHosts: directory + "/known_hosts",
                acceptNewHostKey: true, timeout: .seconds(30)),
            workDirectory: "/var/lib/deployctl/work/\(resource)")
    }

    // MARK: Flavors, images, networks

    struct Flavor: Sendable, Equatable {
        var id: String
        var name: String
        var vcpus: Int
        var ramMB: Int
        var diskGB: Int
        var gpus: Int
    }

    /// GPUs a flavor gives, from its extra specs: PCI passthrough aliases (`a100:2`, summed over a list), vGPU or
    /// physical GPU resource classes, or an explicit `deployctl:gpus`.
    static func gpus(_ specs: [String: JSON]) -> Int {
        if let explicit = specs["deployctl:gpus"]?.int { return explicit }
        var count = 0
        if let aliases = specs["pci_passthrough:alias"]?.string {
            for alias in aliases.split(separator: ",") {
                let parts = alias.split(separator: ":")
                count += parts.count > 1 ? Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 1 : 1
            }
        }
        for key in ["resources:VGPU", "resources:PGPU"] {
            count += specs[key]?.int ?? 0
        }
        return count
    }

    /// The smallest flavor that fits: GPUs first (a CPU node never gets a GPU flavor, a GPU node at least the GPUs it
    /// asks for), then vCPUs, memory and disk.
    static func choose(_ flavors: [Flavor], for request: ComputeRequest) -> Flavor? {
        let memoryMB = Int((request.memoryBytes + 1_048_575) / 1_048_576)
        let diskGB = Int((request.diskBytes + 1_073_741_823) / 1_073_741_824)
        return
            flavors.filter { flavor in
                flavor.vcpus >= request.cpus && flavor.ramMB >= memoryMB && flavor.diskGB >= diskGB
                    && (request.gpus == 0 ? flavor.gpus == 0 : flavor.gpus >= request.gpus)
            }
            .min {
                ($0.gpus, $0.vcpus, $0.ramMB, $0.diskGB, $0.name) < ($1.gpus, $1.vcpus, $1.ramMB, $1.diskGB, $1.name)
            }
    }

    func flavors() async throws(ProviderError) -> [Flavor] {
        let all = try await api.list(.compute, "/flavors/detail", key: "flavors", what: "listing flavors")
        let inline = try await api.minor(.compute) >= 61
        var result: [Flavor] = []
        for flavor in all {
            guard let id = flavor["id"].string else { continue }
            var specs = flavor["extra_specs"].object
            if !inline {
                specs =
                    try await api.call(
                        .compute, "GET", "/flavors/\(id)/os-extra_specs", what: "reading flavor \(id)'s extra specs"
                    ).body["extra_specs"].object
            }
            result.append(
                Flavor(
                    id: id, name: flavor["name"].string ?? id, vcpus: flavor["vcpus"].int ?? 0,
                    ramMB: flavor["ram"].int ?? 0, diskGB: flavor["disk"].int ?? 0, gpus: Self.gpus(specs)))
        }
        return result
    }

    func chooseFlavor(_ request: ComputeRequest) async throws(ProviderError) -> Flavor {
        let all = try await flavors()
        if let wanted = request.flavor {
            guard let flavor = all.first(where: { $0.name == wanted || $0.id == wanted }) else {
                throw fail(
                    "no-fitting-host",
                    "\(request.instance) asks for flavor '\(wanted)', which this cloud does not have; it has: "
                        + all.map(\.name).sorted().joined(separator: ", "))
            }
            return flavor
        }
        guard let flavor = Self.choose(all, for: request) else {
            let largest = all.max { ($0.gpus, $0.vcpus, $0.ramMB) < ($1.gpus, $1.vcpus, $1.ramMB) }
            throw fail(
                "no-fitting-host",
                "no flavor fits \(request.instance): it needs \(request.cpus) vCPUs, "
                    + "\(request.memoryBytes / 1_048_576) MB memory, \(request.diskBytes / 1_073_741_824) GB disk and "
                    + "\(request.gpus) GPU(s); the largest flavor is "
                    + (largest.map { "\($0.name) (\($0.vcpus) vCPUs, \($0.ramMB) MB, \($0.gpus) GPUs)" } ?? "none"))
        }
        return flavor
    }

    /// An image by id or name, else by the os capability's distribution and version (Glance's os_distro and
    /// os_version), else the provider's default image.
    func chooseImage(_ request: ComputeRequest) async throws(ProviderError) -> String {
        if let wanted = request.image ?? (request.osDistribution == nil ? config.image : nil) {
            let byID = try await api.call(
                .image, "GET", "/images/\(Self.query(wanted))", expect: [200, 404], what: "reading image \(wanted)")
            if byID.status == 200, let id = byID.body["id"].string { return id }
            let byName = try await api.call(
                .image, "GET", "/images?name=\(Self.query(wanted))&status=active", what: "looking for image \(wanted)")
            guard let id = byName.body["images"].array.first?["id"].string else {
                throw fail("unknown-image", "\(request.instance) needs image '\(wanted)', which Glance does not have")
            }
            return id
        }
        var query = "/images?status=active"
        if let distribution = request.osDistribution { query += "&os_distro=\(Self.query(distribution.lowercased()))" }
        if let version = request.osVersion { query += "&os_version=\(Self.query(version))" }
        let found = try await api.call(.image, "GET", query, what: "looking for an image for \(request.instance)")
        if let id = found.body["images"].array.first?["id"].string { return id }
        if let fallback = config.image {
            return try await chooseImage(
                ComputeRequest(
                    deployment: request.deployment, instance: request.instance, name: request.name, image: fallback))
        }
        throw fail(
            "unknown-image",
            "Glance has no active image with os_distro=\(request.osDistribution ?? "any") and os_version="
                + "\(request.osVersion ?? "any") for \(request.instance); name one (os capability `image`) or set "
                + "`image:` for the provider")
    }

    /// The networks a node joins (id and name): the template's ports' networks by name or id, else the
    /// provider's network. An unknown network is an error before anything is made.
    func chooseNetworks(_ request: ComputeRequest) async throws(ProviderError) -> [(id: String, name: String)] {
        let all = try await api.list(.network, "/networks", key: "networks", what: "listing networks")
        guard !request.networks.isEmpty else {
            let network = try chooseNetwork(among: all)
            let id = network["id"].string ?? ""
            return [(id, network["name"].string ?? id)]
        }
        var chosen: [(id: String, name: String)] = []
        for wanted in request.networks {
            let matches = all.filter { $0["name"].string == wanted || $0["id"].string == wanted }
            guard matches.count == 1, let id = matches[0]["id"].string else {
                let known = all.compactMap { $0["name"].string }.sorted().joined(separator: ", ")
                throw fail(
                    "unknown-network",
                    matches.isEmpty
                        ? "\(request.instance) has a port on network '\(wanted)', which the project does not have "
                            + "(it has: \(known))"
                        : "\(request.instance) has a port on network '\(wanted)': \(matches.count) networks have that "
                            + "name; give its id")
            }
            chosen.append((id, matches[0]["name"].string ?? id))
        }
        return chosen
    }

    /// The provider's network among the project's: the providers file's `network`, else the project's only one.
    func chooseNetwork(among networks: [JSON]) throws(ProviderError) -> JSON {
        if let wanted = config.network {
            guard
                let network = networks.first(where: { $0["name"].string == wanted || $0["id"].string == wanted }),
                network["id"].string != nil
            else { throw fail("unknown-network", "there is no network '\(wanted)' in the project") }
            return network
        }
        let project = networks.filter { $0["router:external"].bool != true }
        guard project.count == 1, project[0]["id"].string != nil else {
            throw fail(
                "unknown-network",
                "the project has \(project.count) networks (\(project.compactMap { $0["name"].string }.joined(separator: ", "))); "
                    + "say which one nodes join with `network:` in the providers file")
        }
        return project[0]
    }

    // MARK: Keypairs, security groups, server groups, floating IPs

    static func serverGroupName(_ deployment: String, _ group: String) -> String { "deployctl-\(deployment)-\(group)" }

    func serverGroups(named name: String) async throws(ProviderError) -> [JSON] {
        try await api.list(.compute, "/os-server-groups", key: "server_groups", what: "listing server groups")
            .filter { $0["name"].string == name }
    }

    /// The deployment's server group for an anti-affinity policy (soft when not strict), made once.
    func ensureServerGroup(_ name: String, strict: Bool) async throws(ProviderError) -> String {
        // Nodes of one group are made in parallel: one of them makes the group, the others wait for it.
        try await groupCreation.once(name) { () async throws(ProviderError) in
            try await self.makeServerGroup(name, strict: strict)
        }
    }

    private func makeServerGroup(_ name: String, strict: Bool) async throws(ProviderError) -> String {
        if let id = try await serverGroups(named: name).first?["id"].string { return id }
        let policy = strict ? "anti-affinity" : "soft-anti-affinity"
        let group: JSON =
            try await api.minor(.compute) >= 64
            ? ["name": .string(name), "policy": .string(policy)]
            : ["name": .string(name), "policies": [.string(policy)]]
        let created = try await api.call(
            .compute, "POST", "/os-server-groups", body: ["server_group": group], what: "creating server group \(name)")
        guard let id = created.body["server_group"]["id"].string else {
            throw fail("openstack-request", "Nova created server group \(name) but gave no id")
        }
        return id
    }

    func ensureKeypair(_ name: String, publicKey: String) async throws(ProviderError) {
        let existing = try await api.call(
            .compute, "GET", "/os-keypairs/\(Self.query(name))", expect: [200, 404], what: "reading keypair \(name)")
        if existing.status == 200 {
            if existing.body["keypair"]["public_key"].string?.split(separator: " ").prefix(2)
                == publicKey.split(separator: " ").prefix(2)
            {
                return
            }
            // A keypair left from a run whose local key was lost: replace it with this machine's key.
            _ = try await api.call(
                .compute, "DELETE", "/os-keypairs/\(Self.query(name))", expect: [202, 204, 404],
                what: "replacing keypair \(name)")
        }
        _ = try await api.call(
            .compute, "POST", "/os-keypairs",
            body: ["keypair": ["name": .string(name), "public_key": .string(publicKey)]], expect: [200, 201, 409],
            what: "creating keypair \(name)")
    }

    /// The IPv4 ranges of the subnets on `networks`.
    func subnetRanges(of networks: [(id: String, name: String)]) async throws(ProviderError) -> [String] {
        var ranges: [String] = []
        for network in networks {
            let subnets = try await api.list(
                .network, "/subnets?network_id=\(Self.query(network.id))", key: "subnets",
                what: "listing the subnets of \(network.name)")
            for subnet in subnets where subnet["ip_version"].int ?? 4 == 4 {
                if let range = subnet["cidr"].string, !ranges.contains(range) { ranges.append(range) }
            }
        }
        return ranges
    }

    /// The node's security group, named after it: SSH and the ports its endpoints declare, from anywhere; and
    /// everything from `peers`, the subnets of its networks, where the deployment's other nodes are (a cluster's
    /// daemons talk on ports no template declares: slurmctld and slurmd, srun's, sshfs's SSH).
    func ensureSecurityGroup(_ request: ComputeRequest, peers: [String] = []) async throws(ProviderError) -> String {
        var description = "deployctl deployment=\(request.deployment) instance=\(request.instance)"
        if let group = request.antiAffinityGroup {
            description += " group=\(Self.serverGroupName(request.deployment, group))"
        }
        let groups = try await securityGroups(named: request.name)
        let id: String
        var existingPorts: Set<Int> = []
        var existingPeers: Set<String> = []
        if let group = groups.first, let groupID = group["id"].string {
            id = groupID
            for rule in group["security_group_rules"].array where rule["direction"].string == "ingress" {
                if let port = rule["port_range_min"].int { existingPorts.insert(port) }
                if rule["protocol"].string == nil, let range = rule["remote_ip_prefix"].string {
                    existingPeers.insert(range)
                }
            }
        } else {
            let created = try await api.call(
                .network, "POST", "/security-groups",
                body: ["security_group": ["name": .string(request.name), "description": .string(description)]],
                what: "creating security group \(request.name)")
            guard let groupID = created.body["security_group"]["id"].string else {
                throw fail("openstack-request", "Neutron created security group \(request.name) but gave no id")
            }
            id = groupID
        }
        // An ingress rule (IPv4) of the group; one already there (409) is success.
        func allow(_ rule: [String: JSON], what: String) async throws(ProviderError) {
            let base: [String: JSON] = ["security_group_id": .string(id), "direction": "ingress", "ethertype": "IPv4"]
            _ = try await api.call(
                .network, "POST", "/security-group-rules",
                body: ["security_group_rule": .object(base.merging(rule) { _, new in new })], expect: [201, 409],
                what: what)
        }
        for port in Set([22] + request.ports).subtracting(existingPorts).sorted() {
            try await allow(
                [
                    "protocol": "tcp", "port_range_min": .number(Double(port)),
                    "port_range_max": .number(Double(port)), "remote_ip_prefix": "0.0.0.0/0",
                ], what: "opening port \(port) for \(request.instance)")
        }
        for range in peers where !existingPeers.contains(range) {
            try await allow(["remote_ip_prefix": .string(range)], what: "letting \(range) reach \(request.instance)")
        }
        return request.name
    }

    func securityGroups(named name: String) async throws(ProviderError) -> [JSON] {
        let response = try await api.call(
            .network, "GET", "/security-groups?name=\(Self.query(name))", what: "looking for security group \(name)")
        return response.body["security_groups"].array.filter { $0["name"].string == name }
    }

    func deleteSecurityGroup(_ name: String) async throws(ProviderError) {
        for group in try await securityGroups(named: name) {
            guard let id = group["id"].string else { continue }
            // Neutron refuses (409) while a port of a deleted server still uses it: the call retries 409.
            _ = try await api.call(
                .network, "DELETE", "/security-groups/\(id)", expect: [204, 404],
                what: "deleting security group \(name)")
        }
    }

    func ensureFloatingIP(serverID: String, name: String) async throws(ProviderError) -> String {
        let ports = try await api.call(
            .network, "GET", "/ports?device_id=\(serverID)", what: "finding the port of \(name)"
        ).body["ports"].array
        guard let port = ports.first?["id"].string else {
            throw fail("openstack-request", "server \(name) has no port to give a floating IP to")
        }
        let mine = try await floatingIPs(name: name)
        if let existing = mine.first(where: { $0["port_id"].string == port }),
            let address = existing["floating_ip_address"].string
        {
            return address
        }
        if let loose = mine.first, let id = loose["id"].string, let address = loose["floating_ip_address"].string {
            _ = try await api.call(
                .network, "PUT", "/floatingips/\(id)", body: ["floatingip": ["port_id": .string(port)]],
                what: "associating floating IP \(address) with \(name)")
            return address
        }
        let network = try await floatingNetwork()
        let created = try await api.call(
            .network, "POST", "/floatingips",
            body: [
                "floatingip": [
                    "floating_network_id": .string(network), "port_id": .string(port), "description": .string(name),
                ]
            ], what: "allocating a floating IP for \(name)")
        guard let address = created.body["floatingip"]["floating_ip_address"].string else {
            throw fail("openstack-request", "Neutron allocated a floating IP for \(name) but gave no address")
        }
        return address
    }

    func floatingIPs(name: String) async throws(ProviderError) -> [JSON] {
        try await api.list(.network, "/floatingips", key: "floatingips", what: "listing floating IPs")
            .filter { $0["description"].string == name }
    }

    func floatingNetwork() async throws(ProviderError) -> String {
        let response = try await api.call(.network, "GET", "/networks?router:external=true", what: "listing networks")
        let external = response.body["networks"].array.filter { $0["router:external"].bool == true }
        if let wanted = config.floatingNetwork {
            guard
                let id = external.first(where: { $0["name"].string == wanted || $0["id"].string == wanted })?["id"]
                    .string
            else { throw fail("unknown-network", "there is no external network '\(wanted)' for floating IPs") }
            return id
        }
        guard external.count == 1, let id = external[0]["id"].string else {
            throw fail(
                "unknown-network",
                "there are \(external.count) external networks; say which gives floating IPs with `floating_network:`")
        }
        return id
    }

    /// Disassociates, then releases, every floating IP described with the node's name.
    func releaseFloatingIPs(name: String) async throws(ProviderError) {
        let ours = try await floatingIPs(name: name)
        var seen: Set<String> = []
        for ip in ours {
            guard let id = ip["id"].string, seen.insert(id).inserted else { continue }
            if ip["port_id"].string != nil {
                _ = try await api.call(
                    .network, "PUT", "/floatingips/\(id)", body: ["floatingip": ["port_id": .null]],
                    expect: [200, 404],
                    what: "disassociating the floating IP of \(name)")
            }
            _ = try await api.call(
                .network, "DELETE", "/floatingips/\(id)", expect: [204, 404],
                what: "releasing the floating IP of \(name)")
        }
    }

    // MARK: Local files

    func nodeDirectory(_ name: String) -> String {
        config.keyDirectory + "/" + name.replacingOccurrences(of: "/", with: "_")
    }

    /// The node's key pair on this machine (made once, into a temporary name then renamed) and its directory.
    func nodeFiles(_ name: String) throws(ProviderError) -> (directory: String, publicKey: String) {
        let directory = nodeDirectory(name)
        let key = directory + "/id_ed25519"
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if !FileManager.default.fileExists(atPath: key) {
                let temporary = "\(key).\(getpid()).tmp"
                try? FileManager.default.removeItem(atPath: temporary)
                try? FileManager.default.removeItem(atPath: temporary + ".pub")
                let result = try LocalProvider.execute(
                    "/usr/bin/ssh-keygen",
                    ["-q", "-t", "ed25519", "-N", "", "-f", temporary, "-C", "deployctl-\(name)"])
                guard result.status == 0 else { throw fail("key-failed", "ssh-keygen failed: \(result.stderr)") }
                _ = rename(temporary + ".pub", key + ".pub")
                guard rename(temporary, key) == 0 else { throw fail("key-failed", "cannot store the key at \(key)") }
            }
            let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8)
            return (directory, publicKey.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch let error as ProviderError {
            throw error
        } catch {
            throw fail("key-failed", "cannot make the node's key in \(directory): \(error)")
        }
    }

    func write(_ text: String, to path: String) throws(ProviderError) {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw fail("state", "cannot write \(path): \(error)")
        }
    }
}

extension OpenStackProvider {
    /// One line of `providers check`: a part of the cloud and whether it answered as deployctl needs.
    public struct CheckResult: Sendable, Equatable {
        public var part: String
        public var ok: Bool
        public var detail: String
    }

    /// Authenticates and reads, without creating anything: the catalog's endpoints, flavors (with their GPUs),
    /// images, networks and the compute quota left.
    public func check() async -> [CheckResult] {
        var results: [CheckResult] = []
        let token: KeystoneToken
        do { token = try await api.token() } catch {
            return [CheckResult(part: "keystone", ok: false, detail: error.message)]
        }
        results.append(
            CheckResult(
                part: "keystone", ok: true,
                detail: "\(api.credentials): a token for project \(token.projectID) until \(token.expires)"))
        for service in [OpenStackService.compute, .network, .volume, .image] {
            do {
                results.append(
                    CheckResult(part: service.displayName, ok: true, detail: try api.endpoint(service, token: token)))
            } catch {
                results.append(CheckResult(part: service.displayName, ok: false, detail: error.message))
            }
        }
        do {
            let flavors = try await flavors()
            let gpu = flavors.filter { $0.gpus > 0 }.map { "\($0.name) (\($0.gpus) GPU)" }
            results.append(
                CheckResult(
                    part: "flavors", ok: !flavors.isEmpty,
                    detail:
                        "\(flavors.count) flavor(s); with GPUs: \(gpu.isEmpty ? "none" : gpu.joined(separator: ", "))"))
            let limits = try await api.call(.compute, "GET", "/limits", what: "reading limits").body["limits"][
                "absolute"]
            if let cores = limits["maxTotalCores"].int, let used = limits["totalCoresUsed"].int,
                let instances = limits["maxTotalInstances"].int, let running = limits["totalInstancesUsed"].int
            {
                results.append(
                    CheckResult(
                        part: "quota", ok: true,
                        detail: "cores \(used) of \(cores), instances \(running) of \(instances) in use"))
            }
            let images = try await api.list(.image, "/images?status=active", key: "images", what: "listing images")
            results.append(
                CheckResult(
                    part: "images", ok: !images.isEmpty,
                    detail: images.compactMap { $0["name"].string }.sorted().prefix(10).joined(separator: ", ")))
            let network = try chooseNetwork(
                among: try await api.list(.network, "/networks", key: "networks", what: "listing networks"))
            results.append(
                CheckResult(part: "network", ok: true, detail: "nodes join network \(network["id"].string ?? "")"))
        } catch {
            results.append(CheckResult(part: error.code, ok: false, detail: error.message))
        }
        return results
    }
}

/// Work done once per name however many tasks ask at the same time: the first runs it, the others await its
/// result; a failure is not remembered.
final class OnceByName: Sendable {
    private let running = Mutex<[String: Task<Result<String, ProviderError>, Never>]>([:])

    func once(_ name: String, _ work: @escaping @Sendable () async throws(ProviderError) -> String)
        async throws(ProviderError) -> String
    {
        let task = running.withLock { tasks in
            if let existing = tasks[name] { return existing }
            let task = Task { () async -> Result<String, ProviderError> in
                do throws(ProviderError) { return .success(try await work()) } catch { return .failure(error) }
            }
            tasks[name] = task
            return task
        }
        let result = await task.value
        if case .failure = result { running.withLock { $0[name] = nil } }
        return try result.get()
    }
}
