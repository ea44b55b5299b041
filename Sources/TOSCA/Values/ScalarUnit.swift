/// A TOSCA scalar-unit.time (`10 m`, `90 s`, `1 h`) in seconds; nil when the text is not one.
public func scalarUnitSeconds(_ text: String) -> Double? {
    if case .success(let value) = ScalarUnit.parse(text, kind: .time) { return value.base }
    return nil
}

/// TOSCA scalar-unit values (`10 GB`, `500 ms`, `2.4 GHz`, `1 Gbps`) normalised to a base unit for comparison.
struct ScalarUnit: Sendable, Equatable {
    enum Kind: String, Sendable {
        case size = "scalar-unit.size"
        case time = "scalar-unit.time"
        case frequency = "scalar-unit.frequency"
        case bitrate = "scalar-unit.bitrate"

        /// Units and their factor to the base unit (bytes, seconds, hertz, bits per second).
        var units: [(String, Double)] {
            switch self {
            case .size:
                return [
                    ("B", 1), ("kB", 1e3), ("KiB", 1024), ("MB", 1e6), ("MiB", 1_048_576), ("GB", 1e9),
                    ("GiB", 1_073_741_824), ("TB", 1e12), ("TiB", 1_099_511_627_776),
                ]
            case .time:
                return [("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)]
            case .frequency:
                return [("Hz", 1), ("kHz", 1e3), ("MHz", 1e6), ("GHz", 1e9)]
            case .bitrate:
                return [
                    ("bps", 1), ("Kbps", 1e3), ("Kibps", 1024), ("Mbps", 1e6), ("Mibps", 1_048_576), ("Gbps", 1e9),
                    ("Gibps", 1_073_741_824), ("Tbps", 1e12), ("Tibps", 1_099_511_627_776),
                ]
            }
        }
    }

    var kind: Kind
    var number: Double
    var unit: String
    /// The value in the base unit.
    var base: Double

    /// Parses `<number> <unit>`; units match case-insensitively (the spec allows it) except bitrate's
    /// `Kbps`/`Kibps` style, whose case is significant.
    static func parse(_ text: String, kind: Kind) -> Result<ScalarUnit, ValueError> {
        let trimmed = text.trimmingSpaces()
        var numberEnd = trimmed.startIndex
        for index in trimmed.indices {
            let character = trimmed[index]
            if character.isNumber || character == "." || character == "-" || character == "+"
                || ((character == "e" || character == "E") && index != trimmed.startIndex
                    && trimmed[trimmed.index(after: index)...].first.map { $0.isNumber || $0 == "-" || $0 == "+" }
                        == true)
            {
                numberEnd = trimmed.index(after: index)
            } else {
                break
            }
        }
        let numberText = String(trimmed[..<numberEnd])
        let unitText = String(trimmed[numberEnd...]).trimmingSpaces()
        let expected = kind.units.map(\.0).joined(separator: ", ")
        guard let number = Double(numberText), !numberText.isEmpty else {
            return .failure(
                ValueError("'\(text)' is not a \(kind.rawValue): expected a number followed by a unit (\(expected))"))
        }
        guard !unitText.isEmpty else {
            return .failure(ValueError("'\(text)' has no unit; a \(kind.rawValue) needs one of \(expected)"))
        }
        let match =
            kind.units.first { $0.0 == unitText }
            ?? (kind == .bitrate ? nil : kind.units.first { $0.0.lowercased() == unitText.lowercased() })
        guard let (unit, factor) = match else {
            return .failure(ValueError("unknown unit '\(unitText)' in '\(text)'; a \(kind.rawValue) takes \(expected)"))
        }
        guard number >= 0 else { return .failure(ValueError("'\(text)' is negative; a \(kind.rawValue) cannot be")) }
        return .success(ScalarUnit(kind: kind, number: number, unit: unit, base: number * factor))
    }
}

/// Why a value does not parse, in words for a diagnostic.
struct ValueError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// A TOSCA version: `major.minor[.fix[.qualifier[-build]]]`.
struct ToscaVersionValue: Sendable, Comparable {
    var parts: [Int]
    var qualifier: String
    var build: Int

    static func parse(_ text: String) -> ToscaVersionValue? {
        let pieces = text.split(separator: ".", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard pieces.count >= 1, pieces.count <= 4 else { return nil }
        var parts: [Int] = []
        for piece in pieces.prefix(3) {
            guard let value = Int(piece), value >= 0, piece.allSatisfy(\.isNumber) else { return nil }
            parts.append(value)
        }
        if pieces.count == 1 { return ToscaVersionValue(parts: parts + [0], qualifier: "", build: 0) }
        var qualifier = ""
        var build = 0
        if pieces.count == 4 {
            guard pieces.count == 4, parts.count == 3 else { return nil }
            let qualifierPieces = pieces[3].split(separator: "-", maxSplits: 1).map(String.init)
            guard let first = qualifierPieces.first, !first.isEmpty else { return nil }
            qualifier = first
            if qualifierPieces.count == 2 {
                guard let value = Int(qualifierPieces[1]) else { return nil }
                build = value
            }
        }
        return ToscaVersionValue(parts: parts, qualifier: qualifier, build: build)
    }

    static func < (lhs: ToscaVersionValue, rhs: ToscaVersionValue) -> Bool {
        let count = max(lhs.parts.count, rhs.parts.count)
        for index in 0..<count {
            let left = index < lhs.parts.count ? lhs.parts[index] : 0
            let right = index < rhs.parts.count ? rhs.parts[index] : 0
            if left != right { return left < right }
        }
        if lhs.qualifier != rhs.qualifier { return lhs.qualifier < rhs.qualifier }
        return lhs.build < rhs.build
    }

    static func == (lhs: ToscaVersionValue, rhs: ToscaVersionValue) -> Bool { !(lhs < rhs) && !(rhs < lhs) }
}

/// YAML timestamps (ISO 8601 / RFC 3339 as the YAML 1.1 timestamp type allows): `2001-12-14`,
/// `2001-12-14t21:59:43.10-05:00`, `2001-12-14 21:59:43.10 -5`.
enum Timestamp {
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var index = 0
        func digits(_ min: Int, _ max: Int) -> Int? {
            var value = 0
            var count = 0
            while index < bytes.count, count < max, bytes[index] >= 48, bytes[index] <= 57 {
                value = value * 10 + Int(bytes[index] - 48)
                index += 1
                count += 1
            }
            return count >= min ? value : nil
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue! else { return false }
            index += 1
            return true
        }
        guard let year = digits(4, 4), expect("-") else { return false }
        let monthStart = index
        guard let month = digits(1, 2), expect("-") else { return false }
        let dayStart = index
        guard let day = digits(1, 2), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return false }
        // The date-only form needs two-digit month and day (YAML 1.1 timestamp).
        if index == bytes.count { return dayStart - monthStart == 3 && index - dayStart == 2 }
        guard index < bytes.count, [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[index])
        else { return false }
        while index < bytes.count,
            bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "T")
                || bytes[index] == UInt8(ascii: "t")
        {
            index += 1
        }
        guard let hour = digits(1, 2), expect(":"), let minute = digits(2, 2), expect(":"), let second = digits(2, 2),
            hour < 24, minute < 60, second < 61
        else { return false }
        if expect(".") { guard digits(1, 9) != nil else { return false } }
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        if index == bytes.count { return true }
        if expect("Z") || expect("z") { return index == bytes.count }
        guard expect("+") || expect("-"), digits(1, 2) != nil else { return false }
        if expect(":") { guard digits(2, 2) != nil else { return false } }
        return index == bytes.count
    }
}

extension String {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while slice.first == " " || slice.first == "\t" { slice.removeFirst() }
        while slice.last == " " || slice.last == "\t" { slice.removeLast() }
        return String(slice)
    }
}
