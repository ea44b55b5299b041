/// Small YAML reading helpers for callers outside the TOSCA module (input files, import maps).
public enum YAMLDocument {
    /// Reads a YAML mapping as ordered JSON values.
    public static func mapping(text: String, file: String) throws(DiagnosticError) -> [(String, JSONValue)] {
        let root = try YAMLLoader().load(text: text, file: file)
        guard let pairs = root.mapping else {
            if root.isNull { return [] }
            throw DiagnosticError(
                Diagnostic(.error, code: "expected-map", "expected a map of NAME: VALUE", at: root.location))
        }
        return pairs.map { ($0.key.text ?? "", JSONValue(yaml: $0.value)) }
    }
}
