/// The TOSCA intrinsic functions, recognised as single-key maps such as `{get_input: port}`.
enum Functions {
    static let names: Set<String> = [
        "get_input", "get_property", "get_attribute", "get_operation_output", "get_nodes_of_type", "get_artifact",
        "concat", "join", "token",
    ]

    /// The function name when `node` is a function call: a single-key map whose key is a function name and whose
    /// argument has that function's shape, so that data such as a Credential `{token: abc}` stays data.
    static func name(of node: YNode) -> String? {
        guard let pairs = node.mapping, pairs.count == 1, let key = pairs[0].key.text, names.contains(key) else {
            return nil
        }
        let argument = pairs[0].value
        switch key {
        case "get_input", "get_nodes_of_type":
            return argument.scalar != nil || argument.sequence != nil ? key : nil
        default:
            // get_property, get_attribute, get_operation_output, get_artifact, concat, join and token take lists.
            return argument.sequence != nil ? key : nil
        }
    }

    static func isFunctionCall(_ node: YNode) -> Bool { name(of: node) != nil }

    /// The argument node of a function call.
    static func argument(of node: YNode) -> YNode? { node.mapping?.first?.value }
}
