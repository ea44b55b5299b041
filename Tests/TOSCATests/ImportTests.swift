import Foundation
import Testing

@testable import TOSCA

@Suite("Imports, the import cache and CSAR archives")
struct ImportTests {
    static let header = "tosca_definitions_version: tosca_simple_yaml_1_3\n"

    /// A types file defining one node type derived from Root with one integer property.
    static func typesFile(_ type: String, property: String = "size", imports: [String] = []) -> String {
        var text = header
        if !imports.isEmpty { text += "imports:\n" + imports.map { "  - \($0)\n" }.joined() }
        text += """
            node_types:
              \(type):
                derived_from: tosca.nodes.Root
                properties:
                  \(property): { type: integer, default: 1 }

            """
        return text
    }

    /// A template importing `imports` and instantiating each of `types`.
    static func template(imports: [String], types: [String]) -> String {
        var text = header + "imports:\n" + imports.map { "  - \($0)\n" }.joined()
        text += "topology_template:\n  node_templates:\n"
        for (index, type) in types.enumerated() { text += "    node\(index):\n      type: \(type)\n" }
        return text
    }

    // MARK: Local files

    @Test("relative imports resolve against the importing file, not the working directory")
    func relativeImports() throws {
        let directory = try TemporaryDirectory()
        try directory.write("common/base.yaml", Self.typesFile("example.nodes.Base"))
        try directory.write("types/app.yaml", Self.typesFile("example.nodes.App", imports: ["../common/base.yaml"]))
        let root = try directory.write(
            "service/main.yaml",
            Self.template(imports: ["../types/app.yaml"], types: ["example.nodes.App", "example.nodes.Base"]))
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
        #expect(result.sources.keys.contains { $0.hasSuffix("common/base.yaml") })
    }

    @Test("an absolute path and a file:// URL import local files")
    func absoluteAndFileURLImports() throws {
        let directory = try TemporaryDirectory()
        let first = try directory.write("lib/first.yaml", Self.typesFile("example.nodes.First"))
        let second = try directory.write("lib/second.yaml", Self.typesFile("example.nodes.Second"))
        let root = try directory.write(
            "main.yaml",
            Self.template(
                imports: [first.path, second.absoluteString], types: ["example.nodes.First", "example.nodes.Second"]))
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
    }

    @Test("a missing imported file is an error at the import, naming the file")
    func missingFile() throws {
        let directory = try TemporaryDirectory()
        let root = try directory.write("main.yaml", Self.template(imports: ["nowhere/types.yaml"], types: ["Compute"]))
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.errors.map(\.code) == ["import-not-found"])
        let error = try #require(result.errors.first)
        #expect(error.location?.line == 3)
        #expect(error.message.hasPrefix("imported file '"))
        #expect(error.message.hasSuffix("nowhere/types.yaml' does not exist"))
    }

    @Test("namespace_prefix keeps two types of the same name apart as prefix:Name")
    func namespacePrefixes() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.yaml", Self.typesFile("Worker", property: "alpha"))
        try directory.write("b.yaml", Self.typesFile("Worker", property: "beta"))
        let root = try directory.write(
            "main.yaml",
            Self.header + """
                imports:
                  - file: a.yaml
                    namespace_prefix: a
                  - file: b.yaml
                    namespace_prefix: b
                topology_template:
                  node_templates:
                    one:
                      type: a:Worker
                      properties: { alpha: 5 }
                    two:
                      type: b:Worker
                      properties: { beta: 6 }
                    three:
                      type: b:Worker
                      properties: { alpha: 7 }
                    four:
                      type: c:Worker
                """)
        let result = ToscaProcessor.validate(path: root.path)
        let errors = result.errors.map(summary)
        #expect(errors.count == 2, "\(errors)")
        #expect(
            errors.first
                == "17:21: error: unknown-property: unknown property 'alpha' for node template 'three' (type b:Worker); "
                + "expected one of: beta")
        #expect(errors.last?.hasPrefix("19:13: error: unknown-type: unknown node type 'c:Worker'") == true)
    }

    @Test("an import cycle is reported as a chain of files, and the types of both files stay usable")
    func importCycle() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.yaml", Self.typesFile("example.nodes.A", imports: ["b.yaml"]))
        try directory.write("b.yaml", Self.typesFile("example.nodes.B", imports: ["a.yaml"]))
        let root = try directory.write(
            "main.yaml", Self.template(imports: ["a.yaml"], types: ["example.nodes.A", "example.nodes.B"]))
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.errors.map(\.code) == ["import-cycle"])
        let error = try #require(result.errors.first)
        #expect(error.message == "import cycle: a.yaml → b.yaml → a.yaml")
        // At the import where the cycle is entered: a.yaml's import of b.yaml (main → a → b → a).
        #expect(error.location?.file.hasSuffix("/a.yaml") == true)
        #expect(error.location?.line == 3)
    }

    @Test("a file importing itself is a one-step cycle")
    func selfImport() throws {
        let directory = try TemporaryDirectory()
        let root = try directory.write("self.yaml", Self.header + "imports:\n  - ./self.yaml\n")
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.errors.map(\.message) == ["import cycle: self.yaml → self.yaml"])
    }

    @Test("a diamond of imports loads the shared file once")
    func diamondImports() throws {
        let directory = try TemporaryDirectory()
        try directory.write("base.yaml", Self.typesFile("example.nodes.Base"))
        try directory.write("left.yaml", Self.typesFile("example.nodes.Left", imports: ["base.yaml"]))
        try directory.write("right.yaml", Self.typesFile("example.nodes.Right", imports: ["./base.yaml"]))
        let root = try directory.write(
            "main.yaml",
            Self.template(
                imports: ["left.yaml", "right.yaml"],
                types: ["example.nodes.Left", "example.nodes.Right", "example.nodes.Base"]))
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
        #expect(result.sources.keys.filter { $0.hasSuffix("base.yaml") }.count == 1)
    }

    @Test("the same type defined by two different files is a duplicate, unlike a diamond")
    func duplicateTypeAcrossFiles() throws {
        let directory = try TemporaryDirectory()
        try directory.write("one.yaml", Self.typesFile("example.nodes.Same"))
        try directory.write("two.yaml", Self.typesFile("example.nodes.Same"))
        let root = try directory.write(
            "main.yaml", Self.template(imports: ["one.yaml", "two.yaml"], types: ["example.nodes.Same"]))
        let result = ToscaProcessor.validate(path: root.path)
        #expect(result.errors.map(\.code) == ["duplicate-type"])
        #expect(result.errors.first?.message.hasPrefix("node type 'example.nodes.Same' is already defined at ") == true)
    }

    // MARK: URL imports

    @Test("a URL import resolves through the import map, and its relative imports resolve against the URL")
    func urlThroughImportMap() throws {
        let directory = try TemporaryDirectory()
        let outer = try directory.write(
            "outer.yaml", Self.typesFile("remote.nodes.Outer", imports: ["sub/inner.yaml"]))
        let inner = try directory.write("inner.yaml", Self.typesFile("remote.nodes.Inner"))
        let root = try directory.write(
            "main.yaml",
            Self.template(
                imports: ["https://types.example.org/pack/outer.yaml"],
                types: ["remote.nodes.Outer", "remote.nodes.Inner"]))
        let unmapped = ToscaProcessor.validate(path: root.path)
        #expect(unmapped.errors.map(\.code).contains("import-not-cached"))
        let map = ImportMap(entries: [
            "https://types.example.org/pack/outer.yaml": outer.path,
            "https://types.example.org/pack/sub/inner.yaml": inner.path,
        ])
        let result = ToscaProcessor.validate(path: root.path, options: ValidationOptions(importMap: map))
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
    }

    @Test("an import map file maps URLs to paths relative to the map")
    func importMapFile() throws {
        let directory = try TemporaryDirectory()
        try directory.write("maps/local/types.yaml", Self.typesFile("remote.nodes.Mapped"))
        let mapFile = try directory.write("maps/map.yaml", "https://types.example.org/t.yaml: local/types.yaml\n")
        let map = try ImportMap.load(mapFile.path)
        #expect(map.entries["https://types.example.org/t.yaml"] == directory.path("maps/local/types.yaml"))
        let bad = try directory.write("maps/bad.yaml", "- just a list\n")
        #expect(throws: DiagnosticError.self) { try ImportMap.load(bad.path) }
    }

    @Test("a repository import joins the repository URL and the file")
    func repositoryImport() throws {
        let directory = try TemporaryDirectory()
        let types = try directory.write("types.yaml", Self.typesFile("repo.nodes.Thing"))
        let root = try directory.write(
            "main.yaml",
            Self.header + """
                repositories:
                  store:
                    url: https://repo.example.org/tosca/
                imports:
                  - file: types.yaml
                    repository: store
                  - file: other.yaml
                    repository: stroe
                topology_template:
                  node_templates:
                    thing:
                      type: repo.nodes.Thing
                """)
        let map = ImportMap(entries: ["https://repo.example.org/tosca/types.yaml": types.path])
        let result = ToscaProcessor.validate(path: root.path, options: ValidationOptions(importMap: map))
        #expect(
            result.errors.map(summary) == [
                "8:11: error: unknown-repository: import names repository 'stroe', which this file does not define; "
                    + "did you mean 'store'?"
            ])
    }

    @Test("a URL import that is neither cached nor mapped names the command that fixes it")
    func uncachedURL() throws {
        let result = try validate(
            Self.template(imports: ["https://types.example.org/custom.yaml"], types: ["Compute"]))
        let error = try #require(result.errors.first)
        #expect(error.code == "import-not-cached")
        #expect(error.location?.line == 3)
        #expect(
            error.message
                == "import 'https://types.example.org/custom.yaml' is not in the local import cache and deployctl "
                + "never fetches at parse time; add it with `deployctl types add https://types.example.org/custom.yaml "
                + "FILE` or map it with --import-map")
    }

    @Test("the import cache stores a copy per URL, serves it offline, replaces and removes it")
    func importCache() throws {
        let home = try TemporaryDirectory()
        let work = try TemporaryDirectory()
        let cache = ImportCache(home: home.url)
        let url = "https://types.example.org/cached/types.yaml"
        #expect(try cache.entries().isEmpty)
        #expect(cache.path(for: url) == nil)

        let original = try work.write("types.yaml", Self.typesFile("cached.nodes.Thing"))
        let entry = try cache.add(url: url, file: original)
        #expect(entry.url == url)
        #expect(entry.bytes == Self.typesFile("cached.nodes.Thing").utf8.count)
        #expect(try cache.entries().map(\.url) == [url])
        let cachedPath = try #require(cache.path(for: url))
        #expect(cachedPath.hasPrefix(home.url.appendingPathComponent("types").path))
        #expect(FileManager.default.fileExists(atPath: home.path("types/index.json")))

        // The cache holds a copy: the original may go away.
        try FileManager.default.removeItem(at: original)
        let root = try work.write("main.yaml", Self.template(imports: [url], types: ["cached.nodes.Thing"]))
        let options = ValidationOptions(importCache: cache)
        let cached = ToscaProcessor.validate(path: root.path, options: options)
        #expect(cached.diagnostics.isEmpty, "\(cached.diagnostics.map(summary))")

        // Adding the URL again replaces its content.
        let replacement = try work.write("v2.yaml", Self.typesFile("cached.nodes.Other"))
        try cache.add(url: url, file: replacement)
        #expect(try cache.entries().count == 1)
        let replaced = ToscaProcessor.validate(path: root.path, options: options)
        #expect(replaced.errors.map(\.code) == ["unknown-type"])

        #expect(try cache.remove(url: url))
        #expect(try !cache.remove(url: url))
        #expect(!FileManager.default.fileExists(atPath: cachedPath))
        let removed = ToscaProcessor.validate(path: root.path, options: options)
        #expect(removed.errors.map(\.code).first == "import-not-cached")
    }

    @Test("an import map entry wins over the cache for the same URL")
    func importMapOverridesCache() throws {
        let home = try TemporaryDirectory()
        let work = try TemporaryDirectory()
        let url = "https://types.example.org/both.yaml"
        let cache = ImportCache(home: home.url)
        try cache.add(url: url, file: work.write("cached.yaml", Self.typesFile("both.nodes.Cached")))
        let mapped = try work.write("mapped.yaml", Self.typesFile("both.nodes.Mapped"))
        let root = try work.write("main.yaml", Self.template(imports: [url], types: ["both.nodes.Mapped"]))
        let result = ToscaProcessor.validate(
            path: root.path,
            options: ValidationOptions(importCache: cache, importMap: ImportMap(entries: [url: mapped.path])))
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
    }

    // MARK: CSAR

    static let meta =
        "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: tests\nEntry-Definitions: defs/main.yaml\n"

    static var csarEntries: [String: String] {
        [
            "TOSCA-Metadata/TOSCA.meta": meta,
            "defs/main.yaml": template(imports: ["types/custom.yaml"], types: ["csar.nodes.Thing"]),
            "defs/types/custom.yaml": typesFile("csar.nodes.Thing"),
            "defs/README.yaml": "not: a template\n",
        ]
    }

    @Test("a CSAR archive is read through TOSCA-Metadata/TOSCA.meta", .enabled(if: Python.available, "needs python3"))
    func csarArchive() throws {
        let directory = try TemporaryDirectory()
        let archive = directory.url.appendingPathComponent("service.csar")
        try Python.zip(Self.csarEntries, into: archive)
        let result = ToscaProcessor.validate(path: archive.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
        #expect(result.version == .v1_3)
        #expect(result.isValid)
        // The same archive under a .zip name, and under a name without extension (found by its magic number).
        let zip = directory.url.appendingPathComponent("service.zip")
        let bare = directory.url.appendingPathComponent("service-archive")
        try FileManager.default.copyItem(at: archive, to: zip)
        try FileManager.default.copyItem(at: archive, to: bare)
        #expect(ToscaProcessor.validate(path: zip.path).isValid)
        #expect(ToscaProcessor.validate(path: bare.path).isValid)
    }

    @Test("errors inside a CSAR are reported with their line", .enabled(if: Python.available, "needs python3"))
    func csarErrors() throws {
        let directory = try TemporaryDirectory()
        var entries = Self.csarEntries
        entries["defs/main.yaml"] = Self.template(imports: ["types/custom.yaml"], types: ["csar.nodes.Thnig"])
        let archive = directory.url.appendingPathComponent("broken.csar")
        try Python.zip(entries, into: archive)
        let result = ToscaProcessor.validate(path: archive.path)
        let error = try #require(result.errors.first)
        #expect(error.message == "unknown node type 'csar.nodes.Thnig'; did you mean 'csar.nodes.Thing'?")
        #expect(error.location?.line == 7)
        #expect(error.location?.file.hasSuffix("main.yaml") == true)
    }

    @Test("an unpacked CSAR directory is read like the archive")
    func unpackedCSAR() throws {
        let directory = try TemporaryDirectory()
        for (name, text) in Self.csarEntries { try directory.write(name, text) }
        let result = ToscaProcessor.validate(path: directory.url.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
        #expect(result.version == .v1_3)
    }

    @Test(
        "a CSAR without metadata uses its single root YAML file", .enabled(if: Python.available, "needs python3"))
    func csarWithoutMetadata() throws {
        let directory = try TemporaryDirectory()
        let archive = directory.url.appendingPathComponent("plain.csar")
        try Python.zip(
            [
                "service.yaml": Self.template(imports: ["lib/types.yaml"], types: ["plain.nodes.Thing"]),
                "lib/types.yaml": Self.typesFile("plain.nodes.Thing"),
            ], into: archive)
        let result = ToscaProcessor.validate(path: archive.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(summary))")
        #expect(result.version == .v1_3)
    }

    @Test("a CSAR without metadata and with two root YAML files is refused, naming both")
    func csarAmbiguousRoot() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.yaml", Self.template(imports: [], types: ["Compute"]))
        try directory.write("b.yml", Self.template(imports: [], types: ["Compute"]))
        let result = ToscaProcessor.validate(path: directory.url.path)
        #expect(
            result.errors.map(\.message) == [
                "the CSAR has no TOSCA-Metadata/TOSCA.meta and several YAML files at its root (a.yaml, b.yml); "
                    + "add a TOSCA.meta naming Entry-Definitions"
            ])
        #expect(result.errors.first?.code == "bad-csar")
        let empty = try TemporaryDirectory()
        #expect(
            ToscaProcessor.validate(path: empty.url.path).errors.map(\.message) == [
                "the CSAR has no TOSCA-Metadata/TOSCA.meta and no YAML file at its root"
            ])
    }

    @Test("TOSCA.meta without Entry-Definitions is refused")
    func metaWithoutEntry() throws {
        let directory = try TemporaryDirectory()
        try directory.write("TOSCA-Metadata/TOSCA.meta", "TOSCA-Meta-File-Version: 1.0\n")
        try directory.write("main.yaml", Self.template(imports: [], types: ["Compute"]))
        let result = ToscaProcessor.validate(path: directory.url.path)
        #expect(result.errors.map(\.message) == ["TOSCA-Metadata/TOSCA.meta has no 'Entry-Definitions:' line"])
    }

    @Test("a .csar file that is not a zip archive is refused")
    func notAnArchive() throws {
        let directory = try TemporaryDirectory()
        let fake = try directory.write("fake.csar", "tosca_definitions_version: tosca_simple_yaml_1_3\n")
        let result = ToscaProcessor.validate(path: fake.path)
        #expect(result.errors.map(\.code) == ["bad-csar"])
        #expect(result.errors.first?.message == "'\(fake.path)' is not a readable CSAR (zip) archive")
    }

    @Test("an archive entry that escapes the archive is refused", .enabled(if: Python.available, "needs python3"))
    func zipSlip() throws {
        let directory = try TemporaryDirectory()
        let archive = directory.url.appendingPathComponent("evil/evil.csar")
        try FileManager.default.createDirectory(
            at: archive.deletingLastPathComponent(), withIntermediateDirectories: true)
        let escaped = "escaped-\(UUID().uuidString).yaml"
        try Python.zip(
            ["service.yaml": Self.template(imports: [], types: ["Compute"]), "../\(escaped)": "owned: true\n"],
            into: archive)
        let result = ToscaProcessor.validate(path: archive.path)
        #expect(result.errors.map(\.code) == ["bad-csar"])
        let temporary = FileManager.default.temporaryDirectory
        #expect(!FileManager.default.fileExists(atPath: temporary.appendingPathComponent(escaped).path))
    }

    @Test("a path that does not exist is an I/O error")
    func noSuchPath() {
        let result = ToscaProcessor.validate(path: "/nonexistent/deployctl/template.yaml")
        #expect(result.errors.map(\.code) == ["io"])
        #expect(result.errors.first?.message == "no such file '/nonexistent/deployctl/template.yaml'")
    }
}
