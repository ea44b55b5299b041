import Foundation

/// An image's platform as OCI configs and indexes name it: `os/architecture[/variant]`, such as linux/amd64 or
/// linux/arm/v7.
public struct Platform: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    /// Empty when not given (arm64's v8 is usually left out).
    public var variant: String

    public init(os: String, architecture: String, variant: String = "") {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// `OS/ARCH[/VARIANT]`, lower-case letters, digits and `_`; nil when it is not that.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count),
            parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } })
        else { return nil }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : "")
    }

    /// The `platform` object of an index entry (or the os, architecture and variant of a config).
    init?(json: Any?) {
        guard let object = json as? [String: Any], let os = object["os"] as? String,
            let architecture = object["architecture"] as? String
        else { return nil }
        self.init(os: os, architecture: architecture, variant: object["variant"] as? String ?? "")
    }

    public var description: String { "\(os)/\(architecture)" + (variant.isEmpty ? "" : "/\(variant)") }

    public static func < (left: Platform, right: Platform) -> Bool { left.description < right.description }

    var json: [String: Any] {
        var object: [String: Any] = ["os": os, "architecture": architecture]
        if !variant.isEmpty { object["variant"] = variant }
        return object
    }

    /// The same OS and architecture, and the same variant where both name one.
    public func matches(_ other: Platform) -> Bool {
        os == other.os && architecture == other.architecture
            && (variant.isEmpty || other.variant.isEmpty || variant == other.variant)
    }

    /// The machine this runs on, in OCI's names (x86_64 is amd64, aarch64 arm64, armv7l arm/v7).
    public static let host: Platform = {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let names: [String: (String, String)] = [
            "x86_64": ("amd64", ""), "aarch64": ("arm64", ""), "arm64": ("arm64", ""), "armv7l": ("arm", "v7"),
            "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", ""),
        ]
        let (architecture, variant) = names[machine] ?? (machine, "")
        return Platform(os: "linux", architecture: architecture, variant: variant)
    }()
}
