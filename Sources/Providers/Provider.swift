/// What a Compute node asks of its host, from its TOSCA host capability.
public struct ComputeRequest: Sendable, Equatable {
    public var deployment: String
    /// The plan instance, such as `worker[0]`.
    public var instance: String
    /// The deterministic resource name the ledger recorded before this call; the provider tags the resource with
    /// it so that a crashed run's resource can be found again.
    public var name: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var gpus: Int
    public var diskBytes: Int64
    /// An image by name or id (the os capability's `image`, as IM names it), for clouds.
    public var image: String?
    /// The os capability's distribution and version, matched to image properties (os_distro, os_version).
    public var osDistribution: String?
    public var osVersion: String?
    /// A flavor or instance type named by the template (`instance_type`), overriding the choice by size.
    public var flavor: String?
    /// TCP ports the node's endpoints declare, opened to it besides SSH.
    public var ports: [Int]
    /// The node's endpoint is public (`network_name: PUBLIC`): it gets a public address.
    public var isPublic: Bool
    /// First-boot configuration (cloud-init user data) for clouds.
    public var userData: String?
    /// Existing networks (names or ids) the node has a port on, the first one its address; empty: the provider's
    /// network. From the template's `tosca.nodes.network.Port` nodes bound to the node, in their `order`.
    public var networks: [String] = []
    /// A placement group the node belongs to (an anti-affinity policy's name) and whether it is strict.
    public var antiAffinityGroup: String?
    public var strictAntiAffinity: Bool = true

    public init(
        deployment: String, instance: String, name: String, cpus: Int = 1, memoryBytes: Int64 = 0, gpus: Int = 0,
        diskBytes: Int64 = 0, image: String? = nil, osDistribution: String? = nil, osVersion: String? = nil,
        flavor: String? = nil, ports: [Int] = [], isPublic: Bool = false, userData: String? = nil
    ) {
        self.deployment = deployment
        self.instance = instance
        self.name = name
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.gpus = gpus
        self.diskBytes = diskBytes
        self.image = image
        self.osDistribution = osDistribution
        self.osVersion = osVersion
        self.flavor = flavor
        self.ports = ports
        self.isPublic = isPublic
        self.userData = userData
    }
}

/// A compute resource as the provider made it.
public struct ProvisionedCompute: Sendable, Equatable {
    /// The provider's id for it (an SSH host's name, a Nova server id…).
    public var providerID: String
    public var privateAddress: String
    public var publicAddress: String?

    public init(providerID: String, privateAddress: String, publicAddress: String? = nil) {
        self.providerID = providerID
        self.privateAddress = privateAddress
        self.publicAddress = publicAddress
    }
}

/// What a Storage node asks of the provider. `existingID` names a volume made elsewhere (TOSCA `volume_id`): the
/// provider checks nothing is created for it and never deletes it.
public struct VolumeRequest: Sendable, Equatable {
    public var deployment: String
    public var instance: String
    public var name: String
    public var sizeBytes: Int64
    public var existingID: String?
    /// A snapshot to make the volume from (TOSCA `snapshot_id`) and a volume type (`volume_type`), for clouds.
    public var snapshotID: String?
    public var volumeType: String?

    public init(
        deployment: String, instance: String, name: String, sizeBytes: Int64 = 0, existingID: String? = nil,
        snapshotID: String? = nil, volumeType: String? = nil
    ) {
        self.deployment = deployment
        self.instance = instance
        self.name = name
        self.sizeBytes = sizeBytes
        self.existingID = existingID
        self.snapshotID = snapshotID
        self.volumeType = volumeType
    }
}

public struct ProvisionedVolume: Sendable, Equatable {
    public var providerID: String

    public init(providerID: String) { self.providerID = providerID }
}

/// Attaching a volume to a compute resource (a TOSCA AttachesTo relationship).
public struct AttachmentRequest: Sendable, Equatable {
    public var deployment: String
    /// The compute instance, such as `front[0]`.
    public var instance: String
    /// The attachment's own deterministic name.
    public var name: String
    public var volumeID: String
    /// The volume's instance, such as `data_volume[0]`.
    public var volumeInstance: String
    public var computeID: String
    /// Where the volume appears on the host (`location`/`mount_path`); nil leaves it to the provider.
    public var location: String?
    public var readOnly: Bool
    /// For a volume several hosts mount: the attachment made first, on the host where the volume stays. A provider
    /// whose volumes attach to one server at a time serves the volume to this host from that one; one whose
    /// volumes every host reaches (local directories) ignores it.
    public var sharedFrom: Home?

    /// Where a shared volume is attached: the host's instance, its compute id and the volume's mount point there.
    public struct Home: Sendable, Equatable {
        public var instance: String
        public var computeID: String
        public var location: String

        public init(instance: String, computeID: String, location: String) {
            self.instance = instance
            self.computeID = computeID
            self.location = location
        }
    }

    public init(
        deployment: String, instance: String, name: String, volumeID: String, volumeInstance: String,
        computeID: String, location: String?, readOnly: Bool, sharedFrom: Home? = nil
    ) {
        self.sharedFrom = sharedFrom
        self.volumeInstance = volumeInstance
        self.deployment = deployment
        self.instance = instance
        self.name = name
        self.volumeID = volumeID
        self.computeID = computeID
        self.location = location
        self.readOnly = readOnly
    }
}

public struct ProvisionedAttachment: Sendable, Equatable {
    public var providerID: String
    /// Where the volume is reachable on the host (a mount point or a block device).
    public var location: String?

    public init(providerID: String, location: String?) {
        self.providerID = providerID
        self.location = location
    }
}

/// How the orchestrator reaches a compute resource to run operations on it.
public struct HostAccess: Sendable, Equatable {
    public var endpoint: SSHEndpoint
    /// A directory on the host owned by this resource for operation files; removed with the resource.
    public var workDirectory: String

    public init(endpoint: SSHEndpoint, workDirectory: String) {
        self.endpoint = endpoint
        self.workDirectory = workDirectory
    }
}

/// A resource found by the deployment tag, for reconciling the ledger after a crash.
public struct TaggedResource: Sendable, Equatable {
    /// `compute`, `volume` or `attachment`.
    public var kind: String
    public var name: String
    public var providerID: String
    public var instance: String
}

/// A provider failure: a code, a message that says what to do, and where.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public var code: String
    public var provider: String
    public var message: String

    public init(_ code: String, provider: String, _ message: String) {
        self.code = code
        self.provider = provider
        self.message = message
    }

    public var description: String { "\(provider): \(message)" }
}

/// The contract every back-end implements (ssh, local, OpenStack, OpenNebula, Kubernetes). Creation is tagged with
/// the ledger's deterministic name and is idempotent for that name; deletion of something already gone succeeds.
public protocol Provider: Sendable {
    var name: String { get }

    /// Creates (or, for the same name, finds again) a compute resource satisfying the request.
    func createCompute(_ request: ComputeRequest) async throws(ProviderError) -> ProvisionedCompute

    /// Deletes a compute resource by its name; `providerID` narrows the search when known. Idempotent.
    func deleteCompute(name: String, providerID: String?) async throws(ProviderError)

    /// Creates (or finds again) a volume; for `existingID` only checks that the provider can use it.
    func createVolume(_ request: VolumeRequest) async throws(ProviderError) -> ProvisionedVolume

    /// Deletes a volume deployctl created. Idempotent.
    func deleteVolume(name: String, providerID: String?) async throws(ProviderError)

    /// Makes a volume available on a compute resource. Idempotent for the same attachment name.
    func attachVolume(_ request: AttachmentRequest) async throws(ProviderError) -> ProvisionedAttachment

    /// Undoes an attachment by its name; the data stays on the volume. Idempotent.
    func detachVolume(name: String, providerID: String?) async throws(ProviderError)

    /// How to reach a compute resource (by its provider id) over SSH to run operations.
    func access(computeID: String, name: String) throws(ProviderError) -> HostAccess

    /// Every resource tagged with the deployment, whether or not the ledger knows its provider id.
    func resources(deployment: String) async throws(ProviderError) -> [TaggedResource]
}

extension ProviderError {
    /// Failures worth retrying: the network or the host's SSH server, not the request itself.
    public var isTransient: Bool {
        ["ssh-connect", "ssh-handshake", "ssh-channel", "ssh-transfer", "transient"].contains(code)
    }
}
