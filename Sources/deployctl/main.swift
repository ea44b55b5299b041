import TOSCA
let r = ToscaProcessor.validate(path: CommandLine.arguments[1])
let renderer = DiagnosticRenderer(sources: r.sources)
for d in r.diagnostics { print(renderer.render(d)) }
