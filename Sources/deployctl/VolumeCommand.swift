import ArgumentParser
import Foundation
import Providers
import Staging

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Project data volumes: stage anonymised imaging data, seal it, and hand its id to a deployment.",
        discussion: """
            The data manager's workflow: `volume stage` fetches the selected studies (from a PACS over DICOMweb or \
            a directory of DICOM files), anonymises every instance with the DICOM PS3.15 basic profile (keyed \
            pseudonyms and UIDs from the project secret, dates shifted by one offset per patient, patient age, \
            sex, size and weight kept), quarantines screenshots and instances with burned-in annotations, converts \
            each series to NIfTI with dcm2niix, and writes PATIENT/STUDY/SERIES/{dicom,nifti} with a manifest of \
            every file's size and sha256. `volume seal` checks the files against the manifest, makes the volume \
            read-only and gives its id; the volume's path is what a template's data_volume_id takes on the local \
            and ssh providers.

            Volumes are remembered by name in DEPLOYCTL_HOME/volumes/.
            """,
        subcommands: [
            VolumeCreate.self, VolumeStage.self, VolumeSeal.self, VolumeList.self, VolumeShow.self, VolumeDelete.self,
        ])
}

/// Where volumes are recorded: DEPLOYCTL_HOME/volumes/NAME.json holds the volume's directory.
struct VolumeRegistry {
    let directory: URL

    init(home: String?) { directory = resolvedHome(home).appendingPathComponent("volumes") }

    struct Entry: Codable {
        var name: String
        /// The volume's directory here (for a provider volume: the working copy staging resumes from).
        var path: String
        /// A provider volume: the ssh provider and host holding the copy, and its directory there.
        var provider: String?
        var host: String?
        var remote: String?
    }

    func entry(_ name: String) -> Entry? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("\(name).json").path)
        else { return nil }
        return try? JSONDecoder().decode(Entry.self, from: data)
    }

    static func checkName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 63,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }),
            name.first != "."
        else {
            throw CLIError("'\(name)': a volume name is letters, digits, '-', '_' and '.' (at most 63)")
        }
    }

    func path(of name: String) -> String? { entry(name)?.path }

    func volume(_ name: String) throws -> Volume {
        try Self.checkName(name)
        guard let path = path(of: name) else {
            throw CLIError("no volume named '\(name)' (see `deployctl volume list`)")
        }
        return Volume(path: path)
    }

    func record(_ entry: Entry) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let data = try JSONEncoder().encode(entry)
        let name = entry.name
        let target = directory.appendingPathComponent("\(name).json")
        try data.write(to: target, options: .atomic)
    }

    func forget(_ name: String) {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("\(name).json"))
    }

    var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }.sorted()
    }

    /// Opens (creating when needed) the volume `name` at `output`, or the one recorded under that name.
    func openOrCreate(_ name: String, output: String?) throws -> Volume {
        try Self.checkName(name)
        let recorded = path(of: name)
        if let output {
            let absolute = URL(fileURLWithPath: output).standardizedFileURL.path
            if let recorded, recorded != absolute {
                throw CLIError("volume '\(name)' is at \(recorded), not \(absolute)")
            }
            let volume = try Volume.create(name: name, at: absolute)
            if recorded == nil { try record(Entry(name: name, path: absolute)) }
            return volume
        }
        guard let recorded else {
            throw CLIError("no volume named '\(name)': give --output DIR to create it")
        }
        return Volume(path: recorded)
    }
}

/// Runs `body`, printing a StagingError or CLIError plainly and exiting 2 (1 for server and tool failures).
func staging<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as StagingError {
        writeError("error: \(error.message)")
        throw ExitCode(error.code == .server || error.code == .tool ? 1 : 2)
    } catch let error as CLIError {
        writeError("error: \(error.description)")
        throw ExitCode(2)
    }
}

/// Where provider volumes go: the providers file and host-key policy.
struct VolumeProviderOptions: ParsableArguments {
    @Option(name: .customLong("providers"), help: "The providers file (default: DEPLOYCTL_HOME/providers.yaml).")
    var providers: String?
    @Flag(name: .customLong("accept-new-host-keys"), help: "Trust and record host keys seen for the first time.")
    var acceptNewHostKeys = false

    /// The ssh provider `name`'s configuration (nil for the local provider).
    func ssh(_ name: String, home: String?) throws -> SSHProviderConfig? {
        let homeURL = resolvedHome(home)
        let path = providers ?? ProvidersFile.defaultPath(home: homeURL).path
        let file: ProvidersFile
        do { file = try ProvidersFile.loadWithDefaults(path, home: homeURL).file } catch {
            throw CLIError(error.description)
        }
        switch file.providers[name] {
        case .ssh(let config)?: return config
        case .local?: return nil
        case .openstack?:
            throw CLIError(
                "provider '\(name)' is an OpenStack cloud: staging straight into a Cinder volume is not supported yet; "
                    + "stage with --output DIR and copy the sealed volume into a volume of the cloud")
        case nil:
            throw CLIError(
                "no provider named '\(name)'; known: \(file.providers.keys.sorted().joined(separator: ", "))")
        }
    }

    /// The remote copy of a recorded provider volume, connected; nil for volumes that have none.
    func remote(of entry: VolumeRegistry.Entry, home: String?) throws -> RemoteVolume? {
        guard let provider = entry.provider, entry.remote != nil, let config = try ssh(provider, home: home) else {
            return nil
        }
        return try RemoteVolume(
            config: config, host: entry.host, volume: entry.name, acceptNewHostKeys: acceptNewHostKeys)
    }
}

struct VolumeHome: ParsableArguments {
    @Option(name: .customLong("home"), help: "deployctl's state directory (default: $DEPLOYCTL_HOME or ~/.deployctl).")
    var home: String?
}

/// `deployctl volume create --name N --output DIR`.
struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an empty, open volume in a directory of its own.")

    @Option(help: "The volume's name.") var name: String
    @Option(help: "The volume's directory (created; must be empty).") var output: String
    @OptionGroup var home: VolumeHome

    func run() async throws {
        let volume = try await staging { try VolumeRegistry(home: home.home).openOrCreate(name, output: output) }
        print("\(name): \(volume.path) (open)")
    }
}

/// `deployctl volume stage …`.
struct VolumeStage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract: "Fetch, anonymise and convert studies into a volume.",
        discussion: """
            Select studies with --patient-id (repeatable) or --selection FILE (YAML with patients, \
            accession_numbers, study_dates, modality, body_part; or CSV with a PatientID or AccessionNumber column), narrowed \
            by --study-dates, --modality and --body-part. The project secret (--secret-file, at least 16 bytes; keep it with the \
            project, never in the volume) keys the pseudonyms: the same patient, study and series get the same ids \
            in every run of the project, and another project's secret gives unrelated ones.

            Staging goes series by series; a series appears in the volume in one rename and is staged once the \
            manifest lists it. Interrupted, the same command resumes where it stopped and ends with the same \
            manifest. Quarantined instances (BurnedInAnnotation not NO, secondary captures) are counted, never \
            staged; --quarantine DIR copies the originals there for review.
            """)

    @Option(help: "The volume's name.") var name: String
    @Option(help: "The volume's directory, when it does not exist yet.") var output: String?
    @Option(help: "Stage into a volume of this provider (an ssh provider: a copy on one of its hosts).")
    var provider: String?
    @Option(help: "The ssh provider's host to hold the volume (default: its first).") var host: String?
    @Option(name: .customLong("from-dir"), help: "A directory of DICOM files (any layout).") var fromDir: String?
    @Option(name: .customLong("from-dicomweb"), help: "A DICOMweb service root, such as http://pacs:8042/dicom-web.")
    var fromDICOMweb: String?
    @Option(help: "The DICOMweb user (basic auth).") var user: String?
    @Option(name: .customLong("password-file"), help: "A file holding the DICOMweb password.") var passwordFile: String?
    @Option(name: .customLong("token-file"), help: "A file holding a DICOMweb bearer token.") var tokenFile: String?
    @Option(name: .customLong("patient-id"), help: "A patient to stage (repeatable).") var patientIDs: [String] = []
    @Option(help: "A selection file (YAML or CSV).") var selection: String?
    @Option(name: .customLong("study-dates"), help: "YYYYMMDD-YYYYMMDD (either end may be left out).")
    var studyDates: String?
    @Option(help: "Only studies with this modality, such as CT.") var modality: String?
    @Option(name: .customLong("body-part"), help: "Only series of this body part (BodyPartExamined), such as ABDOMEN.")
    var bodyPart: String?
    @Option(name: .customLong("secret-file"), help: "The project secret (a file of at least 16 bytes).")
    var secretFile: String
    @Flag(
        name: .customLong("remove-patient-characteristics"),
        help: "Drop age, sex, size and weight (the basic profile without Retain Patient Characteristics).")
    var removeCharacteristics = false
    @Flag(
        name: .customLong("remove-dates"),
        help: "Empty dates instead of shifting them (without Retain Longitudinal … Modified Dates).")
    var removeDates = false
    @Flag(name: .customLong("no-nifti"), help: "Stage the anonymised DICOM only.") var noNIfTI = false
    @Option(help: "Copy quarantined originals here for review.") var quarantine: String?
    @Option(help: "text or json.") var format: OutputFormat = .text
    @OptionGroup var home: VolumeHome
    @OptionGroup var providerOptions: VolumeProviderOptions

    func validate() throws {
        guard output == nil || provider == nil else {
            throw ValidationError("give --output DIR or --provider NAME, not both")
        }
        guard (fromDir == nil) != (fromDICOMweb == nil) else {
            throw ValidationError("give one of --from-dir DIR and --from-dicomweb URL")
        }
        guard !patientIDs.isEmpty || selection != nil else {
            throw ValidationError("name what to stage: --patient-id ID (repeatable) or --selection FILE")
        }
    }

    func run() async throws {
        let report = try await staging { () async throws -> Stager.Report in
            let secret = try Self.readSecret(secretFile)
            var chosen = try selection.map { try Selection.load($0) } ?? Selection()
            chosen.patientIDs += patientIDs
            if let studyDates { chosen.studyDates = studyDates }
            if let modality { chosen.modality = modality }
            if let bodyPart { chosen.bodyPart = bodyPart }
            let source: any SeriesSource
            if let fromDir {
                source = DirectorySource(root: fromDir)
            } else {
                source = try DICOMwebSource(url: fromDICOMweb ?? "", auth: try auth())
            }
            let converter: NIfTIConverter?
            if noNIfTI {
                converter = nil
            } else {
                guard let found = NIfTIConverter.find() else {
                    throw CLIError("dcm2niix is not on PATH (`make deps` installs it; or give --no-nifti)")
                }
                converter = found
            }
            let registry = VolumeRegistry(home: home.home)
            try VolumeRegistry.checkName(name)
            var directory = output
            var remote: RemoteVolume?
            if let provider {
                // The working copy lives in DEPLOYCTL_HOME; an ssh provider's host gets the published copy.
                directory = registry.directory.appendingPathComponent("\(name).d").path
                if let config = try providerOptions.ssh(provider, home: home.home) {
                    remote = try RemoteVolume(
                        config: config, host: host, volume: name, acceptNewHostKeys: providerOptions.acceptNewHostKeys)
                }
                if let known = registry.entry(name), known.provider != provider {
                    throw CLIError("volume '\(name)' exists, not on provider '\(provider)'")
                }
            }
            let volume = try registry.openOrCreate(name, output: directory)
            if let provider {
                try registry.record(
                    .init(name: name, path: volume.path, provider: provider, host: remote?.host, remote: remote?.root))
            }
            let options = ProfileOptions(
                retainPatientCharacteristics: !removeCharacteristics, modifiedDates: !removeDates)
            var stager = Stager(
                volume: volume, anonymiser: Anonymiser(pseudonyms: try Pseudonyms(secret: secret), options: options),
                converter: converter)
            stager.quarantineDirectory = quarantine
            let quiet = format == .json
            let report = try await stager.stage(from: source, selection: chosen) { progress in
                guard !quiet else { return }
                let rate = progress.seconds > 0 ? Double(progress.instances) / progress.seconds : 0
                let what = progress.skipped ? "already staged" : "staged"
                writeError(
                    "[series \(progress.seriesDone)/\(progress.seriesTotal), studies \(progress.studiesStarted)/"
                        + "\(progress.studiesTotal)] series …\(progress.series.suffix(8)) \(what); "
                        + "\(progress.instances) instances, \(formatBytes(progress.bytes)), "
                        + String(format: "%.0f instances/s", rate))
            }
            if let remote {
                let sent = try remote.publish(volume) { line in if !quiet { writeError(line) } }
                if !quiet { writeError("\(remote.hostName):\(remote.root): \(sent.series) series published") }
            }
            return report
        }
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        case .text:
            print(
                "\(name): \(report.seriesStaged) series staged, \(report.seriesSkipped) already there; "
                    + "\(report.instances) instances, \(formatBytes(report.bytes)) in "
                    + String(format: "%.1f s", report.seconds))
            if !report.quarantined.isEmpty {
                print("quarantined \(report.quarantined.count) instances:")
                for item in report.quarantined { print("  series …\(item.series.suffix(8)): \(item.reason)") }
            }
            print("next: deployctl volume seal \(name)")
        }
    }

    func auth() throws -> DICOMwebClient.Auth {
        if let tokenFile { return .bearer(token: try Self.readText(tokenFile, what: "token")) }
        if let user {
            guard let passwordFile else { throw CLIError("--user needs --password-file") }
            return .basic(user: user, password: try Self.readText(passwordFile, what: "password"))
        }
        return .none
    }

    static func readText(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(path): the \(what) file cannot be read")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The secret's bytes (one trailing newline dropped); a warning when others may read the file.
    static func readSecret(_ path: String) throws -> [UInt8] {
        guard var data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(path): the secret file cannot be read")
        }
        if data.last == 0x0A { data.removeLast() }
        if data.last == 0x0D { data.removeLast() }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int,
            mode & 0o077 != 0
        {
            writeError("warning: \(path) can be read by others (chmod 600 it)")
        }
        return Array(data)
    }
}

/// `deployctl volume seal NAME`.
struct VolumeSeal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Check a volume against its manifest, make it read-only, and print its id and digest.")

    @Argument(help: "The volume's name.") var name: String
    @Option(help: "text or json.") var format: OutputFormat = .text
    @OptionGroup var home: VolumeHome
    @OptionGroup var providerOptions: VolumeProviderOptions

    func run() async throws {
        let registry = VolumeRegistry(home: home.home)
        let (volume, info, location) = try await staging { () throws -> (Volume, Volume.Info, String) in
            let volume = try registry.volume(name)
            let info = try volume.seal()
            guard let entry = registry.entry(name), let remote = try providerOptions.remote(of: entry, home: home.home)
            else { return (volume, info, volume.path) }
            try remote.seal(volume)
            return (volume, info, remote.root)
        }
        switch format {
        case .json:
            try printJSON([
                "name": name, "id": info.id ?? "", "digest": info.digest ?? "", "path": volume.path,
                "volume_id": location,
            ])
        case .text:
            print("\(name): sealed \(info.id ?? "") (\(info.digest ?? ""))")
            print("deploy with: -i data_volume_id=\(location)")
        }
    }
}

/// `deployctl volume list`.
struct VolumeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the volumes deployctl knows.")

    @Option(help: "text or json.") var format: OutputFormat = .text
    @OptionGroup var home: VolumeHome

    func run() async throws {
        let registry = VolumeRegistry(home: home.home)
        var rows: [[String: Any]] = []
        for name in registry.names {
            guard let path = registry.path(of: name) else { continue }
            let volume = Volume(path: path)
            let info = try? volume.info()
            let manifest = try? volume.manifest()
            rows.append([
                "name": name, "path": path, "state": info?.state.rawValue ?? "missing", "id": info?.id ?? "",
                "series": manifest?.series.count ?? 0, "instances": manifest?.instanceCount ?? 0,
            ])
        }
        switch format {
        case .json: try printJSON(rows)
        case .text:
            if rows.isEmpty { print("no volumes (deployctl volume stage … --output DIR creates one)") }
            for row in rows {
                print(
                    "\(row["name"]!)\t\(row["state"]!)\t\(row["id"]!)\t\(row["series"]!) series\t"
                        + "\(row["instances"]!) instances\t\(row["path"]!)")
            }
        }
    }
}

/// `deployctl volume show NAME`.
struct VolumeShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a volume: state, id, patients, series, instances, bytes, tools.")

    @Argument(help: "The volume's name.") var name: String
    @Option(help: "text or json.") var format: OutputFormat = .text
    @OptionGroup var home: VolumeHome

    func run() async throws {
        let registry = VolumeRegistry(home: home.home)
        let (volume, info, manifest) = try await staging { () throws -> (Volume, Volume.Info, Manifest) in
            let volume = try registry.volume(name)
            return (volume, try volume.info(), try volume.manifest())
        }
        let patients = Set(manifest.series.map(\.patient)).count
        let studies = Set(manifest.series.map(\.study)).count
        let quarantined = manifest.series.reduce(0) { $0 + $1.quarantined }
        switch format {
        case .json:
            try printJSON([
                "name": name, "path": volume.path, "state": info.state.rawValue, "id": info.id ?? "",
                "digest": info.digest ?? "", "patients": patients, "studies": studies,
                "series": manifest.series.count, "instances": manifest.instanceCount, "bytes": manifest.byteCount,
                "quarantined": quarantined, "tools": manifest.tools,
                "volume_id": registry.entry(name)?.remote ?? volume.path,
                "provider": registry.entry(name)?.provider ?? "",
                "options": [
                    "retain_patient_characteristics": manifest.profile.options.retainPatientCharacteristics,
                    "modified_dates": manifest.profile.options.modifiedDates,
                ],
            ])
        case .text:
            print("\(name): \(info.state.rawValue)\(info.id.map { " \($0)" } ?? "") at \(volume.path)")
            if let entry = registry.entry(name), let remote = entry.remote {
                print("on provider \(entry.provider ?? "") host \(entry.host ?? ""): \(remote)")
            }
            print(
                "\(patients) patients, \(studies) studies, \(manifest.series.count) series, "
                    + "\(manifest.instanceCount) instances (\(quarantined) quarantined), \(formatBytes(manifest.byteCount))"
            )
            print(
                "profile: \(manifest.profile.standard); tools: "
                    + manifest.tools.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }
}

/// `deployctl volume delete NAME`.
struct VolumeDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a volume's directory and forget it (a sealed one needs --force).")

    @Argument(help: "The volume's name.") var name: String
    @Flag(help: "Delete a sealed volume too.") var force = false
    @OptionGroup var home: VolumeHome
    @OptionGroup var providerOptions: VolumeProviderOptions

    func run() async throws {
        try await staging {
            let registry = VolumeRegistry(home: home.home)
            let volume = try registry.volume(name)
            if let info = try? volume.info(), info.state == .sealed, !force {
                throw CLIError("volume '\(name)' is sealed (\(info.id ?? "")); give --force to delete it")
            }
            if let entry = registry.entry(name), let remote = try providerOptions.remote(of: entry, home: home.home) {
                try remote.delete()
            }
            if FileManager.default.fileExists(atPath: volume.path) { try volume.delete() }
            registry.forget(name)
        }
        print("\(name): deleted")
    }
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(
        withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
}
