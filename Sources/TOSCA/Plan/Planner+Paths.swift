import Foundation

extension Planner {
    /// An operation's implementation for the plan. TOSCA resolves a relative file against the file that wrote it
    /// (for an inherited operation, the imported types file); the plan states every file relative to the template,
    /// which is where the deployer looks, so files written in other files are rebased. URLs, absolute paths and
    /// names of the node's own artifacts are left as written.
    func implementationValue(_ implementation: YNode, artifacts: Set<String> = []) -> JSONValue {
        let value = JSONValue(yaml: implementation)
        let written = implementation.location.file
        guard !templatePath.isEmpty, written != templatePath, !written.contains("!/"), !written.hasPrefix("<"),
            !written.contains("://")
        else { return value }
        let from = Self.absolute(written).deletingLastPathComponent()
        let to = Self.absolute(templatePath).deletingLastPathComponent()
        func rebase(_ path: JSONValue) -> JSONValue {
            guard case .string(let text) = path, !text.isEmpty, !text.hasPrefix("/"), !text.contains("://"),
                !artifacts.contains(text)
            else { return path }
            return .string(Self.relative(from.appendingPathComponent(text).standardizedFileURL, to: to))
        }
        switch value {
        case .string: return rebase(value)
        case .object(var fields):
            for index in fields.indices {
                switch fields[index].0 {
                case "primary":
                    if case .object(var primary) = fields[index].1 {
                        for inner in primary.indices where primary[inner].0 == "file" {
                            primary[inner].1 = rebase(primary[inner].1)
                        }
                        fields[index].1 = .object(primary)
                    } else {
                        fields[index].1 = rebase(fields[index].1)
                    }
                case "dependencies":
                    if case .array(let items) = fields[index].1 { fields[index].1 = .array(items.map(rebase)) }
                default: break
                }
            }
            return .object(fields)
        default: return value
        }
    }

    private static func absolute(_ path: String) -> URL {
        let url =
            path.hasPrefix("/")
            ? URL(fileURLWithPath: path)
            : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        return url.standardizedFileURL
    }

    /// `target` relative to the directory `base` (both standardized), with `..` where they part.
    private static func relative(_ target: URL, to base: URL) -> String {
        let targetParts = target.pathComponents
        let baseParts = base.pathComponents
        var common = 0
        while common < min(targetParts.count, baseParts.count), targetParts[common] == baseParts[common] {
            common += 1
        }
        let parts = Array(repeating: "..", count: baseParts.count - common) + targetParts[common...]
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }
}
