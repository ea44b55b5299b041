import Foundation

extension TopologyValidator {
    /// Warns about implementation scripts and artifacts that name a local file which does not exist. Paths are
    /// relative to the file that wrote them (the template, or the types file for inherited operations); URLs,
    /// repository artifacts and names of the node's own artifacts are left alone.
    func checkFiles(_ template: NodeTemplate) {
        let artifactNames = Set(template.artifacts.map(\.name))
        for interface in template.interfaces {
            for operation in interface.operations {
                guard let implementation = operation.implementation else { continue }
                var references: [YNode] = []
                if implementation.scalar != nil {
                    references.append(implementation)
                } else {
                    if let primary = implementation["primary"] { references.append(primary["file"] ?? primary) }
                    references += implementation["dependencies"]?.sequence ?? []
                }
                for reference in references {
                    guard let path = reference.text, !artifactNames.contains(path) else { continue }
                    checkLocalFile(
                        path, written: reference, what: "implementation of \(interface.name).\(operation.name)",
                        owner: template.name)
                }
            }
        }
        for artifact in template.artifacts where artifact.repository == nil {
            guard let file = artifact.file else { continue }
            checkLocalFile(file, written: artifact.node, what: "artifact '\(artifact.name)'", owner: template.name)
        }
    }

    private func checkLocalFile(_ path: String, written node: YNode, what: String, owner: String) {
        guard !path.contains("://"), !path.isEmpty else { return }
        let shown = node.location.file
        guard !shown.hasPrefix("<"), !shown.contains("://") else { return }
        let directory = URL(fileURLWithPath: realPath(shown)).deletingLastPathComponent()
        let resolved = path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
        guard !FileManager.default.fileExists(atPath: resolved.path) else { return }
        sink.warning(
            "file-not-found",
            "the \(what) of node template '\(owner)' names '\(path)', which does not exist beside "
                + "\(shown); deployment will fail without it", at: node,
            path: "topology_template.node_templates.\(owner)")
    }
}
