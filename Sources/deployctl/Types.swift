import ArgumentParser
import Foundation
import TOSCA

struct Types: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "types",
        abstract: "Manage the local import cache that URL imports resolve through.",
        discussion: """
            Templates written for other tools import custom types by URL. deployctl never fetches at parse time: \
            register a local copy once with `deployctl types add URL FILE`, and every later parse uses it.
            """,
        subcommands: [Add.self, List.self, Remove.self])

    struct Home: ParsableArguments {
        @Option(
            name: .customLong("home"), help: "deployctl's state directory (default: $DEPLOYCTL_HOME or ~/.deployctl).")
        var home: String?

        var cache: ImportCache { ImportCache(home: resolvedHome(home)) }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Store FILE as the content of import URL.")

        @Argument(help: "The URL exactly as templates import it.") var url: String
        @Argument(help: "A local file with that URL's content.") var file: String
        @OptionGroup var home: Home

        func run() throws {
            guard FileManager.default.fileExists(atPath: file) else {
                writeError("error: no such file '\(file)'")
                throw ExitCode(2)
            }
            do {
                let entry = try home.cache.add(url: url, file: URL(fileURLWithPath: file))
                print("cached \(url) (\(entry.bytes) bytes) in \(home.cache.directory.path)")
            } catch {
                writeError("error: could not write the import cache: \(error.localizedDescription)")
                throw ExitCode(2)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the cached import URLs.")
        @Option(help: "Output format: text or json.") var format: OutputFormat = .text
        @OptionGroup var home: Home

        func run() throws {
            let entries = (try? home.cache.entries()) ?? []
            switch format {
            case .json:
                print(
                    JSONValue.array(
                        entries.map {
                            .object([("url", .string($0.url)), ("file", .string($0.file)), ("bytes", .int($0.bytes))])
                        }
                    ).serialized())
            case .text:
                if entries.isEmpty { print("the import cache is empty (\(home.cache.directory.path))") }
                for entry in entries { print("\(entry.url)  (\(entry.bytes) bytes)") }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a URL from the import cache.")
        @Argument(help: "The cached URL.") var url: String
        @OptionGroup var home: Home

        func run() throws {
            guard (try? home.cache.remove(url: url)) == true else {
                writeError("error: '\(url)' is not in the import cache")
                throw ExitCode(2)
            }
            print("removed \(url)")
        }
    }
}
