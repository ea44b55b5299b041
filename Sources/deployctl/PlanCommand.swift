import ArgumentParser
import Foundation
import TOSCA

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Validate a template with its inputs and print the deployment plan.",
        discussion: """
            The plan expands scalable nodes into instances, draws HostedOn/DependsOn/ConnectsTo/AttachesTo edges, \
            and orders the steps an orchestrator runs (create compute and volumes, attach, then the Standard \
            lifecycle operations) into levels whose steps can run in parallel. The JSON form is the contract the \
            orchestrator consumes (docs/plan-format.md).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, dot }

    @Argument(help: "The template (file, CSAR archive or CSAR directory).")
    var template: String

    @Option(help: "Output format: text, json or dot.")
    var format: Format = .text

    @OptionGroup var options: TemplateOptions

    func run() throws {
        let validationOptions = try options.validationOptionsOrExit()
        let (result, plan) = ToscaProcessor.plan(path: template, options: validationOptions)
        let renderer = DiagnosticRenderer(sources: result.sources, color: useColor())
        guard let plan else {
            if format == .json {
                print(DiagnosticJSON.file(result).serialized())
            } else {
                for diagnostic in result.diagnostics { writeError(renderer.render(diagnostic)) }
                writeError("\(template): invalid: \(result.errors.count) error(s); no plan")
            }
            throw ExitCode(result.diagnostics.contains { $0.code == "io" } ? 2 : 1)
        }
        for diagnostic in result.diagnostics where format == .text { writeError(renderer.render(diagnostic)) }
        switch format {
        case .text: print(plan.text, terminator: "")
        case .json: print(plan.json.serialized())
        case .dot: print(plan.dot, terminator: "")
        }
    }
}
