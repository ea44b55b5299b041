/// The TOSCA intrinsic functions, recognised as single-key maps such as `{get_input: port}`.
enum Functions {
    static let names: Set<String> = [
        "get_input", "get_property", "get_attribute", "get_operation_output", "get_nodes_of_type", "get_artifact",
        "concat", "join", "token",
    ]

    /// The function name when `node` is a function call.
    static func name(of node: YNode) -> String? {
        guard let pairs = node.mapping, pairs.count == 1, let key = pairs[0].key.text, names.contains(key) else {
            return nil
        }
        return key
    }

    static func isFunctionCall(_ node: YNode) -> Bool { name(of: node) != nil }

    /// The argument node of a function call.
    static func argument(of node: YNode) -> YNode? { node.mapping?.first?.value }
}
