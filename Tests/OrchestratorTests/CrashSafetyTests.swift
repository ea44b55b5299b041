import Foundation
import GRDB
import Testing

@testable import Orchestrator

/// Kills a process that is writing the ledger (SIGKILL, at many moments) and checks that the state it leaves is
/// whole: the database passes SQLite's integrity check and every entry is in a state the ledger's rules allow.
@Suite("Crash safety of the ledger")
struct CrashSafetyTests {
    static let writerHome = ProcessInfo.processInfo.environment["DEPLOYCTL_LEDGER_WRITER_HOME"]

    /// The child: runs the resource lifecycle in a loop until it is killed. Only enabled inside the child process.
    @Test("ledger writer (runs only as the crash test's child process)", .enabled(if: writerHome != nil))
    func writerLoop() throws {
        let store = try StateStore.open(home: URL(fileURLWithPath: Self.writerHome!))
        if try store.deployment(named: "crash") == nil {
            try store.create(DeploymentRecord(name: "crash", template: "t.yaml"))
        }
        var round = 0
        while true {
            round += 1
            let instance = "worker[\(round % 7)]"
            let entry = try store.intend(deployment: "crash", instance: instance, kind: "compute", provider: "ssh")
            let id = try #require(entry.id)
            try store.markCreated(id, providerID: "id-\(round)", detail: #"{"round":\#(round)}"#)
            if round % 3 == 0 {
                try store.markDeleting(id)
                try store.markDeleted(id)
            }
        }
    }

    @Test("a writer killed at random moments leaves a whole database and consistent entries")
    func killedWriterLeavesConsistentState() throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let home = try StateHome()
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<6 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: executable)
            child.arguments = ["--testing-library", "swift-testing", "--filter", "writerLoop"]
            var environment = ProcessInfo.processInfo.environment
            environment["DEPLOYCTL_LEDGER_WRITER_HOME"] = home.url.path
            child.environment = environment
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            // Let it get going (the first run also creates the database), then kill it without warning.
            let delay = UInt32(attempt == 0 ? 600_000 : Int.random(in: 50_000...400_000, using: &generator))
            usleep(delay)
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(child.terminationReason == .uncaughtSignal)

            let store = try StateStore.open(home: home.url)
            let integrity = try store.database.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
            #expect(integrity == "ok")
            let entries = try store.resources(of: "crash")
            #expect(!entries.isEmpty, "attempt \(attempt): the writer recorded nothing before it was killed")
            for entry in entries {
                switch entry.status {
                case .intended: #expect(entry.providerID == nil)
                case .created, .deleting, .deleted: #expect(entry.providerID != nil)
                case .failed: #expect(entry.error != nil)
                }
            }
            #expect(Set(entries.map(\.name)).count == entries.count)
        }
    }
}
