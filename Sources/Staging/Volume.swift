import Foundation

/// A project data volume on disk: anonymised DICOM and NIfTI side by side, one directory per series
/// (`PATIENT/STUDY/SERIES/dicom/*.dcm`, `PATIENT/STUDY/SERIES/nifti/*.nii.gz` + `.json`), a manifest of every
/// staged file, and `volume.json` with the volume's state. A series becomes visible in one rename, and is staged
/// once the manifest lists it: the manifest is the only record of what is staged, rewritten atomically after each
/// series, so an interrupted run leaves nothing that looks staged but is not.
public struct Volume: Sendable {
    public let path: String

    /// volume.json: the volume's identity and state.
    public struct Info: Codable, Sendable, Equatable {
        public var name: String
        public var state: State
        /// sha256 of manifest.json, set by `seal`.
        public var digest: String?
        /// `vol-` and the first 16 hex digits of the digest, set by `seal`: the id handed to the project.
        public var id: String?

        public enum State: String, Codable, Sendable { case open, sealed }
    }

    public init(path: String) { self.path = path }

    var infoPath: String { path + "/volume.json" }
    var manifestPath: String { path + "/manifest.json" }
    var workPath: String { path + "/.staging" }
    /// What an atomic write of volume.json or manifest.json leaves when it is killed before its rename.
    var temporaryFiles: [String] { [infoPath + ".tmp", manifestPath + ".tmp"] }

    /// Creates an empty, open volume (an existing open volume of the same name is taken as it is).
    public static func create(name: String, at path: String) throws(StagingError) -> Volume {
        let volume = Volume(path: path)
        if FileManager.default.fileExists(atPath: volume.infoPath) {
            let info = try volume.info()
            guard info.name == name else {
                throw StagingError(.volume, "\(path) already holds volume '\(info.name)'")
            }
            // A run killed between the two files of a new volume: its manifest is the empty one.
            if info.state == .open, !FileManager.default.fileExists(atPath: volume.manifestPath) {
                try volume.write(Manifest())
            }
            return volume
        }
        // A run killed while it wrote volume.json the first time leaves only its temporary file: not a volume yet.
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: path),
            !entries.allSatisfy({ volume.temporaryFiles.contains(path + "/" + $0) })
        {
            throw StagingError(.volume, "\(path) is not empty; a volume needs a directory of its own")
        }
        for leftover in volume.temporaryFiles { try? FileManager.default.removeItem(atPath: leftover) }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch { throw StagingError(.volume, "\(path): cannot create the directory (\(error.localizedDescription))") }
        try volume.write(Info(name: name, state: .open))
        try volume.write(Manifest())
        return volume
    }

    public func info() throws(StagingError) -> Info {
        try Self.decode(Info.self, infoPath)
    }

    public func manifest() throws(StagingError) -> Manifest {
        try Self.decode(Manifest.self, manifestPath)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ path: String) throws(StagingError) -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StagingError(.volume, "\(path) is missing: not a deployctl volume")
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw StagingError(.volume, "\(path) is unreadable (\(error))")
        }
    }

    func write(_ info: Info) throws(StagingError) { try Self.atomicWrite(Self.encode(info), to: infoPath) }
    func write(_ manifest: Manifest, encoder: ManifestEncoder = ManifestEncoder()) throws(StagingError) {
        try Self.atomicWrite(encoder.encode(manifest), to: manifestPath)
    }

    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(value)) ?? Data()) + Data("\n".utf8)
    }

    /// Writes to a temporary file beside the target, flushes it, and renames it over the target.
    static func atomicWrite(_ data: Data, to path: String) throws(StagingError) {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw StagingError(.volume, "\(temporary): cannot be written")
        }
        if let handle = FileHandle(forWritingAtPath: temporary) {
            try? handle.synchronize()
            try? handle.close()
        }
        guard rename(temporary, path) == 0 else {
            throw StagingError(.volume, "\(path): cannot be replaced (errno \(errno))")
        }
    }

    /// Seals the volume: checks every file against the manifest, makes the tree read-only, and records the
    /// manifest's digest and the volume id. Sealing a sealed volume only checks it again.
    @discardableResult
    public func seal() throws(StagingError) -> Info {
        var info = try info()
        let manifest = try manifest()
        try verify(manifest)
        let data = FileManager.default.contents(atPath: manifestPath) ?? Data()
        let digest = Crypto.hex(Crypto.sha256(data))
        if info.state == .sealed {
            guard info.digest == "sha256:" + digest else {
                throw StagingError(.volume, "\(path): the manifest changed after the volume was sealed")
            }
            return info
        }
        removeLeftovers()
        info.state = .sealed
        info.digest = "sha256:" + digest
        info.id = "vol-" + digest.prefix(16)
        try write(info)
        try makeReadOnly()
        return info
    }

    /// What a run that was killed can leave: its work directory and half-written temporary files. None of it is
    /// listed in the manifest, so none of it was ever staged.
    func removeLeftovers() {
        for leftover in [workPath] + temporaryFiles {
            try? FileManager.default.removeItem(atPath: leftover)
        }
    }

    /// Every manifest file exists with its size and checksum, and (with `strays`) no other file sits among the
    /// series: a series directory a killed run moved in but did not record is redone by the next run, and stops a
    /// seal until then.
    public func verify(_ manifest: Manifest, strays: Bool = true) throws(StagingError) {
        var expected = Set<String>()
        for series in manifest.series {
            for file in series.files {
                expected.insert(file.path)
                let full = path + "/" + file.path
                let actual: (hex: String, size: Int64)
                do { actual = try Crypto.sha256(file: full) } catch {
                    throw StagingError(.volume, "\(file.path) is listed in the manifest but missing")
                }
                guard actual.size == file.size, actual.hex == file.sha256 else {
                    throw StagingError(.volume, "\(file.path) does not match the manifest (size or sha256)")
                }
            }
        }
        guard strays else { return }
        let skip: Set<String> = ["volume.json", "manifest.json", ".staging", "volume.json.tmp", "manifest.json.tmp"]
        guard let walker = FileManager.default.enumerator(atPath: path) else { return }
        while let relative = walker.nextObject() as? String {
            if skip.contains(String(relative.split(separator: "/").first ?? "")) {
                if !relative.contains("/") { walker.skipDescendants() }
                continue
            }
            if !Self.isDirectory(path + "/" + relative) && !expected.contains(relative) {
                throw StagingError(.volume, "\(relative) is in the volume but not in the manifest")
            }
        }
    }

    func makeReadOnly() throws(StagingError) {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return }
        var directories = [path]
        while let relative = walker.nextObject() as? String {
            let full = path + "/" + relative
            if Self.isDirectory(full) { directories.append(full) } else { chmod(full, 0o444) }
        }
        // Directories last, deepest first, so the walk above could still read them.
        for directory in directories.reversed() { chmod(directory, 0o555) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Deletes the volume's directory (sealed volumes are made writable again first).
    public func delete() throws(StagingError) {
        if let walker = FileManager.default.enumerator(atPath: path) {
            chmod(path, 0o755)
            while let relative = walker.nextObject() as? String {
                if Self.isDirectory(path + "/" + relative) { chmod(path + "/" + relative, 0o755) }
            }
        }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw StagingError(.volume, "\(path): cannot be deleted (\(error.localizedDescription))")
        }
    }
}

/// Writes manifest.json as a JSON object with one line per series, each series encoded once and kept: rewriting
/// the manifest after every series then costs a copy of its bytes, not an encoding of every series so far.
final class ManifestEncoder {
    private var fragments: [String: Data] = [:]
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private struct Header: Encodable {
        var format: Int
        var profile: Manifest.ProfileRecord
        var secretFingerprint: String
        var tools: [String: String]
    }

    func encode(_ manifest: Manifest) -> Data {
        let header = Header(
            format: manifest.format, profile: manifest.profile, secretFingerprint: manifest.secretFingerprint,
            tools: manifest.tools)
        var out = (try? encoder.encode(header)) ?? Data("{}".utf8)
        out.removeLast()  // the closing brace: the series follow
        out.append(contentsOf: Array(",\n\"series\":[".utf8))
        var live = Set<String>()
        for (index, series) in manifest.series.enumerated() {
            let key = series.series
            live.insert(key)
            let fragment: Data
            if let known = fragments[key] {
                fragment = known
            } else {
                fragment = (try? encoder.encode(series)) ?? Data()
                fragments[key] = fragment
            }
            out.append(contentsOf: Array((index == 0 ? "\n" : ",\n").utf8))
            out.append(fragment)
        }
        if fragments.count > live.count { fragments = fragments.filter { live.contains($0.key) } }
        out.append(contentsOf: Array("\n]}\n".utf8))
        return out
    }
}

/// manifest.json: every staged series and file. It holds no time and no source path, so staging the same
/// selection with the same secret and tools gives the same manifest, byte for byte.
public struct Manifest: Codable, Sendable, Equatable {
    public var format = 1
    /// The profile and options applied.
    public var profile = ProfileRecord()
    /// Tool versions (dcm2niix, deployctl's staging format).
    public var tools: [String: String] = [:]
    /// A keyed fingerprint of the project secret (not the secret): resuming with another secret is refused.
    public var secretFingerprint = ""
    public var series: [Series] = []

    public struct ProfileRecord: Codable, Sendable, Equatable {
        public var standard = "DICOM PS3.15 Annex E table E.1-1, rev 2024b"
        public var options = ProfileOptions()
    }

    public struct Series: Codable, Sendable, Equatable {
        public var patient: String
        public var study: String
        public var series: String
        public var modality: String
        public var instances: Int
        public var quarantined: Int
        public var files: [File]
    }

    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var sha256: String
    }

    public init() {}

    /// Adds or replaces a series, keeping series sorted so the order does not depend on the staging order.
    mutating func record(_ entry: Series) {
        series.removeAll { $0.series == entry.series }
        series.append(entry)
        series.sort { ($0.patient, $0.study, $0.series) < ($1.patient, $1.study, $1.series) }
    }

    public var instanceCount: Int { series.reduce(0) { $0 + $1.instances } }
    public var byteCount: Int64 { series.reduce(0) { $0 + $1.files.reduce(0) { $0 + $1.size } } }
}
