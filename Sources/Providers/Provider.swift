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

    public init(
        deployment: String, instance: String, name: String, cpus: Int = 1, memoryBytes: Int64 = 0, gpus: Int = 0
    ) {
        self.deployment = deployment
        self.instance = instance
        self.name = name
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.gpus = gpus
    }
}

/// A compute resource as the provider made it.
public struct ProvisionedCompute: Sendable, Equatable {
    /// The provider's id for it (an SSH host's name, a Nova server id…).
    public var providerID: String
    public var privateAddress: String
    public var publicAddress: String?
}

/// A resource found by the deployment tag, for reconciling the ledger after a crash.
public struct TaggedResource: Sendable, Equatable {
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

    /// Every resource tagged with the deployment, whether or not the ledger knows its provider id.
    func resources(deployment: String) async throws(ProviderError) -> [TaggedResource]
}
