import Foundation

/// Layers made from packages: a pip requirement set installed into a directory, and Debian packages (with their
/// dependency closure) unpacked into a root. Each is materialised in a scratch directory, which then becomes a
/// layer like any directory (sorted entries, fixed owner and mtime), so the same package files give the same
/// digests. Pin versions (`==`) for layers that stay the same from one build to the next.
enum PackageLayers {
    /// `python3 -m pip install --target DIR -r REQUIREMENTS` without byte-code; console scripts get
    /// `#!/usr/bin/python3` instead of the build machine's interpreter path.
    static func pip(requirements: String, into directory: String) throws {
        try run(
            "/usr/bin/env",
            [
                "python3", "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                "--no-warn-script-location", "--target", directory, "-r", requirements,
            ], what: "pip install -r \(requirements)")
        let bin = directory + "/bin"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: bin)) ?? []).sorted() {
            let path = bin + "/" + name
            guard let data = FileManager.default.contents(atPath: path), data.starts(with: Array("#!".utf8)),
                let newline = data.firstIndex(of: 0x0A)
            else { continue }
            let shebang = String(decoding: data[..<newline], as: UTF8.self)
            guard shebang.contains("python") else { continue }
            try (Data("#!/usr/bin/python3".utf8) + data[newline...]).write(to: URL(fileURLWithPath: path))
        }
        // Byte-code caches would carry build times; --no-compile leaves none, but a package's own build might.
        if let walker = FileManager.default.enumerator(atPath: directory) {
            var caches: [String] = []
            while let relative = walker.nextObject() as? String {
                if relative.hasSuffix("__pycache__") { caches.append(directory + "/" + relative) }
            }
            for cache in caches { try? FileManager.default.removeItem(atPath: cache) }
        }
    }

    /// The packages and everything they depend on (Depends and Pre-Depends, recursively; no Recommends), fetched
    /// with `apt-get download` from this machine's apt sources into a cache (`$DEPLOYCTL_CACHE/debs`, else
    /// `~/.cache/deployctl/debs`; a file already there is used when its SHA-256 is the one apt's index gives),
    /// every file checked against that SHA-256, and unpacked with `dpkg-deb -x` into `root` in file-name order.
    /// Maintainer scripts do not run. Returns the packages unpacked.
    @discardableResult
    static func debian(_ packages: [String], into root: String) throws -> [String] {
        let closure = try run(
            "/usr/bin/apt-cache",
            [
                "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                "--no-replaces", "--no-enhances",
            ] + packages, what: "apt-cache depends \(packages.joined(separator: " "))"
        )
        .split(separator: "\n").filter { !$0.hasPrefix(" ") && !$0.hasPrefix("<") }.map(String.init)
        let names = Array(Set(closure + packages)).sorted()
        // What apt would fetch (URI, file name, size, SHA-256), then only the files the cache lacks.
        let wanted = try run(
            "/usr/bin/apt-get", ["download", "--print-uris"] + names, what: "apt-get download --print-uris"
        )
        .split(separator: "\n").compactMap { line -> (file: String, sha256: String)? in
            let fields = line.split(separator: " ")
            guard fields.count == 4, fields[3].hasPrefix("SHA256:") else { return nil }
            return (String(fields[1]), String(fields[3].dropFirst(7)).lowercased())
        }
        guard !wanted.isEmpty else {
            throw ApplianceBuilder.BuildError(description: "apt knows none of \(names.joined(separator: " "))")
        }
        let cache = debCache()
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        func verified(_ file: String, _ sha256: String) -> Bool {
            guard let handle = FileHandle(forReadingAtPath: cache + "/" + file) else { return false }
            defer { try? handle.close() }
            let digest = SHA256Stream()
            while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { digest.update(chunk) }
            return digest.finish() == "sha256:" + sha256
        }
        let missing = wanted.filter { !verified($0.file, $0.sha256) }.map {
            String($0.file.prefix { $0 != "_" })
        }
        if !missing.isEmpty {
            try run("/usr/bin/apt-get", ["download", "-q"] + missing, what: "apt-get download", directory: cache)
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (file, sha256) in wanted.sorted(by: { $0.file < $1.file }) {
            guard verified(file, sha256) else {
                throw ApplianceBuilder.BuildError(
                    description: "\(file): its SHA-256 does not match what apt's index says (download again)")
            }
            try run("/usr/bin/dpkg-deb", ["-x", cache + "/" + file, root], what: "dpkg-deb -x \(file)")
        }
        return names
    }

    static func debCache() -> String { ApplianceBuilder.cache("debs") }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], what: String, directory: String? = nil) throws
        -> String
    {
        try Tool.run(executable, arguments, what: what, directory: directory)
    }
}

extension ApplianceBuilder {
    /// `$DEPLOYCTL_CACHE/NAME`, else `~/.cache/deployctl/NAME`: where downloads are kept between builds.
    public static func cache(_ name: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let cache = environment["DEPLOYCTL_CACHE"], !cache.isEmpty { return cache + "/" + name }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache/deployctl/" + name
    }
}
