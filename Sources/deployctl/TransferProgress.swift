import Appliances
import ArgumentParser
import Foundation
import Synchronization

/// `--progress`: where progress of long work goes (always stderr, never stdout, so `--format json` stays JSON).
enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    /// A redrawn line on a terminal, else plain lines.
    case auto
    /// Plain lines: at most one every 2 s per step, and one at the end of each.
    case plain
    /// Nothing.
    case none

    static let help = ArgumentHelp(
        "auto (one redrawn line per step on a terminal, else a plain line every 2 s and one at each step's end), "
            + "plain, or none. Progress goes to stderr only.")
}

/// Prints the progress of steps (a layer being built, a blob being sent) on stderr: on a terminal one line,
/// redrawn at most ten times a second and kept when the step ends; otherwise a plain line at most every
/// `interval` seconds and one when the step ends.
final class ProgressPrinter: Sendable {
    let mode: ProgressMode
    let terminal: Bool
    let interval: Double
    /// The step of the last line printed, and when.
    private let last: Mutex<(key: String, at: Double)>

    init(_ mode: ProgressMode, interval: Double = 2) {
        self.mode = mode
        terminal = mode == .auto && isatty(STDERR_FILENO) == 1
        self.interval = interval
        last = Mutex(("", Date().timeIntervalSinceReferenceDate))
    }

    /// `key` names the step (its progress lines replace each other); `finished` ends it.
    func update(_ key: String, _ line: String, finished: Bool) {
        guard mode != .none else { return }
        let now = Date().timeIntervalSinceReferenceDate
        let text: String? = last.withLock { last in
            let due = terminal ? last.key != key || now - last.at >= 0.1 : now - last.at >= interval
            guard finished || due else { return nil }
            last = (finished ? "" : key, now)
            return terminal ? "\r\u{1B}[K" + line + (finished ? "\n" : "") : line + "\n"
        }
        if let text { FileHandle.standardError.write(Data(text.utf8)) }
    }

    /// "3.0 MiB / 12.0 MiB read, 41.5 MiB/s" (without the total when it is not known).
    static func amount(_ done: Int64, of total: Int64?, _ verb: String, rate: Double) -> String {
        formatBytes(done) + (total.map { " / " + formatBytes($0) } ?? "") + (verb.isEmpty ? "" : " " + verb)
            + ", \(formatBytes(Int64(rate)))/s"
    }

    /// A build's layers.
    func build(_ step: BuildProgress) {
        let head = "layer \(step.layer)/\(step.layers) (\(step.source)): "
        let amount = Self.amount(step.bytesRead, of: step.total, "read", rate: step.rate)
        let tail = step.digest.map { " → \($0.prefix(19))… (\(formatBytes(step.written)))" } ?? ""
        update("layer \(step.layer)", head + amount + tail, finished: step.finished)
    }

    /// A push's or pull's blobs.
    func transfer(_ step: RegistryClient.TransferProgress) {
        let head = "blob \(step.blob)/\(step.blobs) \(step.digest.prefix(19))…: "
        let line: String
        switch step.state {
        case .started, .sending, .uploaded, .downloaded:
            line = Self.amount(
                step.blobBytes, of: step.blobSize, step.finished ? step.state.rawValue : "", rate: step.blobRate)
        case .skipped: line = "\(formatBytes(step.blobSize)), skipped (the registry has it)"
        case .mounted: line = "\(formatBytes(step.blobSize)), mounted from another repository"
        case .present: line = "\(formatBytes(step.blobSize)), already in the layout"
        }
        update("blob \(step.blob)", head + line, finished: step.finished)
    }
}
