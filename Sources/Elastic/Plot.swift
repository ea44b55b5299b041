import Foundation

/// The benchmark's wait-versus-cost figure as SVG: one panel per trace, each policy a point at (node-hours, worst
/// p95 wait over its job kinds), the offline bound a dashed vertical line. Lower and further left is better.
public enum WaitCostPlot {
    public struct Panel: Sendable {
        public var title: String
        public var results: [Metrics]
        public var bound: Double?

        public init(title: String, results: [Metrics], bound: Double?) {
            self.title = title
            self.results = results
            self.bound = bound
        }
    }

    static let colors = [
        "deployctl": "#1b7837", "clues": "#b2182b", "cluster-autoscaler": "#2166ac", "static-max": "#777777",
    ]

    /// The worst p95 wait over the job kinds of a run, in minutes.
    static func worstWait(_ metrics: Metrics) -> Double {
        (metrics.waits.values.map(\.p95).max() ?? 0) / 60
    }

    public static func svg(_ panels: [Panel], columns: Int = 3) -> String {
        let width = 360.0
        let height = 260.0
        let rows = (panels.count + columns - 1) / max(1, columns)
        let total = (width * Double(min(columns, panels.count)), height * Double(rows) + 30)
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(total.0))" height="\(Int(total.1))" \
            font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="18" font-size="13" font-weight="bold">p95 wait (worst job kind) against node-hours; \
            dashed: offline bound</text>

            """
        for (index, panel) in panels.enumerated() {
            let x0 = width * Double(index % columns)
            let y0 = 30 + height * Double(index / columns)
            out += panelSVG(panel, x: x0, y: y0, width: width, height: height)
        }
        return out + "</svg>\n"
    }

    static func panelSVG(_ panel: Panel, x: Double, y: Double, width: Double, height: Double) -> String {
        let left = x + 50
        let right = x + width - 15
        let top = y + 25
        let bottom = y + height - 40
        // The axis spans the elastic policies and the bound; a static pool far to the right sits on the edge,
        // its value in the legend.
        let elastic = panel.results.filter { $0.policy != "static-max" }.map(\.nodeHours)
        let hours = (elastic.isEmpty ? panel.results.map(\.nodeHours) : elastic) + (panel.bound.map { [$0] } ?? [])
        let maxX = niceCeiling((hours.max() ?? 1) * 1.1)
        let maxY = niceCeiling(max(panel.results.map(worstWait).max() ?? 0, 1) * 1.4)  // room for the legend
        func px(_ value: Double) -> Double { left + (right - left) * value / maxX }
        func py(_ value: Double) -> Double { bottom - (bottom - top) * value / maxY }
        var out = "<g>\n"
        out += "<text x=\"\(f(x + 10))\" y=\"\(f(y + 15))\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        for step in 0...4 {
            let vx = maxX * Double(step) / 4
            let vy = maxY * Double(step) / 4
            out += "<text x=\"\(f(px(vx)))\" y=\"\(f(bottom + 14))\" text-anchor=\"middle\">\(short(vx))</text>\n"
            out += "<text x=\"\(f(left - 5))\" y=\"\(f(py(vy) + 4))\" text-anchor=\"end\">\(short(vy))</text>\n"
        }
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 30))\" text-anchor=\"middle\">node-hours</text>\n"
        out +=
            "<text x=\"\(f(x + 12))\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(f(x + 12)) \(f((top + bottom) / 2)))\">p95 wait (min)</text>\n"
        if let bound = panel.bound {
            out +=
                "<line x1=\"\(f(px(bound)))\" y1=\"\(f(top))\" x2=\"\(f(px(bound)))\" y2=\"\(f(bottom))\" "
                + "stroke=\"black\" stroke-dasharray=\"4 3\"/>\n"
        }
        for (rank, metrics) in panel.results.enumerated() {
            let color = colors[metrics.policy] ?? "#444444"
            let cx = px(min(metrics.nodeHours, maxX))
            let cy = py(worstWait(metrics))
            let marker = metrics.nodeHours > maxX ? "▶" : "●"
            out +=
                "<text x=\"\(f(cx))\" y=\"\(f(cy + 4))\" text-anchor=\"middle\" font-size=\"12\" "
                + "fill=\"\(color)\" fill-opacity=\"0.8\">\(marker)</text>\n"
            // The legend, top right: each policy with its numbers.
            let legend = String(format: "%@  %.1f h, %.1f min", metrics.policy, metrics.nodeHours, worstWait(metrics))
            out +=
                "<text x=\"\(f(right))\" y=\"\(f(top + 12 * Double(rank)))\" text-anchor=\"end\" "
                + "fill=\"\(color)\">\(escape(legend))</text>\n"
        }
        if let bound = panel.bound {
            out +=
                "<text x=\"\(f(right))\" y=\"\(f(top + 12 * Double(panel.results.count)))\" text-anchor=\"end\">"
                + String(format: "offline bound  %.1f h", bound) + "</text>\n"
        }
        return out + "</g>\n"
    }

    /// 1, 2, 2.5 or 5 times a power of ten, at least `value`.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(value)))
        for factor in [1.0, 2, 2.5, 5, 10] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func short(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
