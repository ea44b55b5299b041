import ArgumentParser
import Foundation
import TOSCA

@main
struct Deployctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployctl",
        abstract: "Turn TOSCA templates of research imaging environments into plans and infrastructure.",
        discussion: """
            Validation and planning work offline: URL imports resolve through the local import cache \
            (DEPLOYCTL_HOME/types, filled by `deployctl types add`) or a per-run --import-map, never the network.

            Deployments run on the providers declared in DEPLOYCTL_HOME/providers.yaml; their state (deployments, \
            steps and a crash-safe ledger of every resource created) lives in DEPLOYCTL_HOME/state.sqlite.

            Exit codes: 0 success; 1 an invalid template, a degraded deployment or a failed check; 2 a usage, \
            state or I/O error; 130 interrupted. Each command's --help says more.
            """,
        version: "0.1.0",
        subcommands: [
            Validate.self, PlanCommand.self, Up.self, Status.self, Outputs.self, SSH.self, Scale.self, Down.self,
            List.self, Types.self, ProvidersCommand.self, ElasticCommand.self, ApplianceCommand.self,
            VolumeCommand.self,
        ]
    )

    /// ArgumentParser exits 64 on usage errors; deployctl promises 2.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue == 1 ? 2 : code.rawValue)
        }
    }
}

/// Options shared by the commands that read templates.
struct TemplateOptions: ParsableArguments {
    @Option(name: .customLong("home"), help: "deployctl's state directory (default: $DEPLOYCTL_HOME or ~/.deployctl).")
    var home: String?

    @Option(name: .customLong("import-map"), help: "A YAML/JSON file mapping import URLs to local files, for this run.")
    var importMap: String?

    @Option(name: [.customShort("i"), .customLong("input")], help: "An input value, NAME=VALUE (VALUE read as YAML).")
    var input: [String] = []

    @Option(name: .customLong("inputs"), help: "A YAML file of input values.")
    var inputsFile: String?

    /// The options, or exit code 2 after printing what is wrong with them (an unreadable import map or inputs file).
    func validationOptionsOrExit() throws -> ValidationOptions {
        do {
            return try validationOptions()
        } catch let error as CLIError {
            writeError("error: \(error.description)")
            throw ExitCode(2)
        }
    }

    func validationOptions() throws -> ValidationOptions {
        let home = resolvedHome(home)
        var options = ValidationOptions(importCache: ImportCache(home: home))
        if let importMap {
            do {
                options.importMap = try ImportMap.load(importMap)
            } catch {
                throw CLIError(error.diagnostic.message)
            }
        }
        if let inputsFile {
            options.inputs = try InputsFile.load(inputsFile)
        }
        for assignment in input {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw ValidationError("-i expects NAME=VALUE, got '\(assignment)'")
            }
            options.inputs[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
        }
        return options
    }
}

/// deployctl's state directory: `--home`, else $DEPLOYCTL_HOME, else ~/.deployctl.
func resolvedHome(_ option: String?) -> URL {
    option.map { URL(fileURLWithPath: $0) } ?? ImportCache.defaultHome()
}

/// A usage or I/O problem: printed plainly, exit code 2.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

func writeError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Whether to colour diagnostics: only on a terminal, and never when NO_COLOR is set.
func useColor() -> Bool {
    isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
}
