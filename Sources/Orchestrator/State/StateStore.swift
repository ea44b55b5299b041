import Foundation
import GRDB

/// A deployment as recorded: what it was made from and where it stands.
public struct DeploymentRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "deployments"

    public enum Status: String, Codable, Sendable, DatabaseValueConvertible {
        /// `up` or `scale` is running, or was killed while running (`up` again resumes).
        case deploying
        case deployed
        /// Some steps failed; healthy nodes were kept. `up` again retries what failed.
        case degraded
        /// Stopped by Ctrl-C; `up` again resumes.
        case interrupted
        case deleting, deleted, failed
    }

    public var name: String
    /// The template's absolute path.
    public var template: String
    /// Input values (YAML text by input name) as JSON. Callers pass only values that are not secret.
    public var inputs: String
    /// The provider it was deployed with.
    public var provider: String = ""
    /// Instance counts set by `scale`, by node, as JSON.
    public var counts: String = "{}"
    public var status: Status
    public var error: String?
    public var createdAt: Date
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case name, template, inputs, provider, counts, status, error
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public init(
        name: String, template: String, inputs: String = "{}", provider: String = "", status: Status = .deploying,
        now: Date = Date()
    ) {
        self.name = name
        self.provider = provider
        self.template = template
        self.inputs = inputs
        self.status = status
        self.createdAt = now
        self.updatedAt = now
    }
}

/// deployctl's state: deployments and the resource ledger, in one SQLite database under DEPLOYCTL_HOME.
///
/// Every change is one SQLite transaction, so a process killed at any instant leaves the previous or the next
/// state, never a half-written one. The ledger's rule — record `intended` before creating, `created` after — is
/// what lets a later run find and remove resources whose creation was in flight when deployctl died.
public struct StateStore: Sendable {
    /// A pool: WAL journaling, so readers (`status`) never wait for a writer (`up`).
    let database: DatabasePool

    /// Opens (creating if needed) `home/state.sqlite` and brings its schema up to date.
    public static func open(home: URL) throws -> StateStore {
        do {
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let queue = try DatabasePool(
                path: home.appendingPathComponent("state.sqlite").path, configuration: configuration)
            try migrator.migrate(queue)
            return StateStore(database: queue)
        } catch {
            throw OrchestratorError(
                "state-unavailable", "cannot open deployctl's state in \(home.path)", cause: error)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "deployments") { table in
                table.primaryKey("name", .text)
                table.column("template", .text).notNull()
                table.column("inputs", .text).notNull()
                table.column("status", .text).notNull()
                table.column("error", .text)
                table.column("created_at", .datetime).notNull()
                table.column("updated_at", .datetime).notNull()
            }
            try db.create(table: "resources") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("deployment", .text).notNull().references("deployments", onDelete: .restrict)
                table.column("instance", .text).notNull()
                table.column("kind", .text).notNull()
                table.column("name", .text).notNull()
                table.column("provider", .text).notNull()
                table.column("provider_id", .text)
                table.column("status", .text).notNull()
                table.column("detail", .text)
                table.column("error", .text)
                table.column("updated_at", .datetime).notNull()
                table.uniqueKey(["deployment", "name"])
            }
        }
        migrator.registerMigration("v2: steps, provider and counts") { db in
            try db.alter(table: "deployments") { table in
                table.add(column: "provider", .text).notNull().defaults(to: "")
                table.add(column: "counts", .text).notNull().defaults(to: "{}")
            }
            try db.create(table: "steps") { table in
                table.column("deployment", .text).notNull().references("deployments", onDelete: .cascade)
                table.column("step", .text).notNull()
                table.column("instance", .text).notNull()
                table.column("status", .text).notNull()
                table.column("attempts", .integer).notNull()
                table.column("error", .text)
                table.column("outputs", .text).notNull()
                table.column("updated_at", .datetime).notNull()
                table.primaryKey(["deployment", "step"])
            }
        }
        return migrator
    }

    // MARK: Deployments

    /// Records a new deployment; an existing one of the same name is an error (deployments are not overwritten).
    public func create(_ deployment: DeploymentRecord) throws {
        try write("create deployment '\(deployment.name)'") { db in
            if try DeploymentRecord.fetchOne(db, key: deployment.name) != nil {
                throw OrchestratorError(
                    "deployment-exists", "a deployment named '\(deployment.name)' already exists; pick another --name")
            }
            try deployment.insert(db)
        }
    }

    public func deployment(named name: String) throws -> DeploymentRecord? {
        try read { db in try DeploymentRecord.fetchOne(db, key: name) }
    }

    public func deployments() throws -> [DeploymentRecord] {
        try read { db in try DeploymentRecord.order(Column("name")).fetchAll(db) }
    }

    public func setStatus(
        of name: String, _ status: DeploymentRecord.Status, error: String? = nil, now: Date = Date()
    ) throws {
        try write("update deployment '\(name)'") { db in
            try db.execute(
                sql: "UPDATE deployments SET status = ?, error = ?, updated_at = ? WHERE name = ?",
                arguments: [status, error, now, name])
            if db.changesCount == 0 {
                throw OrchestratorError("unknown-deployment", "no deployment named '\(name)'")
            }
        }
    }

    /// Forgets a deployment. Refused while any of its resources may still exist: that is how leaks start.
    public func remove(deployment name: String) throws {
        try write("remove deployment '\(name)'") { db in
            let live = try LedgerEntry.filter(
                Column("deployment") == name && Column("status") != ResourceStatus.deleted
            )
            .fetchCount(db)
            guard live == 0 else {
                throw OrchestratorError(
                    "resources-remain",
                    "deployment '\(name)' still has \(live) resource(s) that may exist; run `deployctl down \(name)` first"
                )
            }
            try LedgerEntry.filter(Column("deployment") == name).deleteAll(db)
            try StepRecord.filter(Column("deployment") == name).deleteAll(db)
            try DeploymentRecord.deleteOne(db, key: name)
        }
    }

    /// Updates what `up` and `scale` may change: the template path, non-secret inputs, provider and counts.
    public func update(_ deployment: DeploymentRecord) throws {
        try write("update deployment '\(deployment.name)'") { db in try deployment.update(db) }
    }

    // MARK: Steps

    public func steps(of deployment: String) throws -> [String: StepRecord] {
        try read { db in
            let rows = try StepRecord.filter(Column("deployment") == deployment).fetchAll(db)
            return Dictionary(rows.map { ($0.step, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func save(_ step: StepRecord) throws {
        try write("record step \(step.step)") { db in try step.save(db) }
    }

    /// Forgets the steps of instances that are gone (scaled in) — their own and the relationship steps that name
    /// them (`SOURCE.requirement.TARGET.Configure.op`) — so that a later scale-out runs them again.
    public func forgetSteps(of deployment: String, instances: Set<String>) throws {
        try write("forget steps") { db in
            let records = try StepRecord.filter(Column("deployment") == deployment).fetchAll(db)
            for record in records {
                let named = instances.contains { gone in
                    record.step.hasPrefix("\(gone).") || record.step.contains(".\(gone).")
                }
                if instances.contains(record.instance) || named { _ = try record.delete(db) }
            }
        }
    }

    // MARK: The resource ledger

    /// Records that a resource is about to be created and returns its entry. Idempotent: asking again for the same
    /// instance and kind returns the existing entry (a resumed `up` does not create a duplicate); a resource that
    /// was deleted is brought back to `intended`.
    /// `key` tells apart several resources of one kind on one instance (an attachment per volume); it defaults to
    /// the kind and goes into the name.
    public func intend(
        deployment: String, instance: String, kind: String, key: String? = nil, provider: String, now: Date = Date()
    ) throws -> LedgerEntry {
        let name = ResourceName.make(deployment: deployment, instance: instance, kind: key ?? kind)
        return try write("record intended \(kind) of \(instance)") { db in
            if var existing = try LedgerEntry.filter(Column("deployment") == deployment && Column("name") == name)
                .fetchOne(db)
            {
                if existing.status == .deleted {
                    existing.status = .intended
                    existing.providerID = nil
                    existing.error = nil
                    existing.updatedAt = now
                    try existing.update(db)
                }
                return existing
            }
            var entry = LedgerEntry(
                id: nil, deployment: deployment, instance: instance, kind: kind, name: name, provider: provider,
                providerID: nil, status: .intended, detail: nil, error: nil, updatedAt: now)
            try entry.insert(db)
            return entry
        }
    }

    public func markCreated(_ id: Int64, providerID: String, detail: String? = nil, now: Date = Date()) throws {
        try update(id, "created") { entry in
            entry.status = .created
            entry.providerID = providerID
            entry.detail = detail ?? entry.detail
            entry.error = nil
            entry.updatedAt = now
        }
    }

    public func markFailed(_ id: Int64, error: String, now: Date = Date()) throws {
        try update(id, "failed") { entry in
            entry.status = .failed
            entry.error = error
            entry.updatedAt = now
        }
    }

    public func markDeleting(_ id: Int64, now: Date = Date()) throws {
        try update(id, "deleting") { entry in
            entry.status = .deleting
            entry.updatedAt = now
        }
    }

    public func markDeleted(_ id: Int64, now: Date = Date()) throws {
        try update(id, "deleted") { entry in
            entry.status = .deleted
            entry.updatedAt = now
        }
    }

    /// Everything of a deployment that may exist in the cloud (not confirmed deleted), oldest first — what `down`
    /// must remove, including resources whose creation was in flight.
    public func liveResources(of deployment: String) throws -> [LedgerEntry] {
        try read { db in
            try LedgerEntry.filter(Column("deployment") == deployment && Column("status") != ResourceStatus.deleted)
                .order(Column("id")).fetchAll(db)
        }
    }

    public func resources(of deployment: String) throws -> [LedgerEntry] {
        try read { db in try LedgerEntry.filter(Column("deployment") == deployment).order(Column("id")).fetchAll(db) }
    }

    // MARK: Plumbing

    private func update(_ id: Int64, _ what: String, _ change: (inout LedgerEntry) -> Void) throws {
        try write("mark resource \(id) \(what)") { db in
            guard var entry = try LedgerEntry.fetchOne(db, key: id) else {
                throw OrchestratorError("unknown-resource", "no resource \(id) in the ledger")
            }
            change(&entry)
            try entry.update(db)
        }
    }

    @discardableResult
    private func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do {
            return try database.write(body)
        } catch let error as OrchestratorError {
            throw error
        } catch {
            throw OrchestratorError("state-write-failed", "could not \(what) in deployctl's state", cause: error)
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try database.read(body)
        } catch {
            throw OrchestratorError("state-read-failed", "could not read deployctl's state", cause: error)
        }
    }
}
