/// The PS3.6 data dictionary (generated into DictionaryTable.swift): the VR implicit VR files leave out.
public enum DICOMDictionary {
    struct Entry {
        var vr: VR
        var keyword: Substring
    }

    /// Exact tags, and tags with repeating-group wildcards as (mask, value) pairs.
    static let table: (exact: [UInt32: Entry], patterns: [(mask: UInt32, value: UInt32, entry: Entry)]) = {
        var exact: [UInt32: Entry] = [:]
        var patterns: [(UInt32, UInt32, Entry)] = []
        for line in dictionaryTable.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let vr = VR(rawValue: String(fields[1])) else { continue }
            let entry = Entry(vr: vr, keyword: fields[2])
            if let (mask, value) = pattern(fields[0]) {
                if mask == 0xFFFF_FFFF { exact[value] = entry } else { patterns.append((mask, value, entry)) }
            }
        }
        return (exact, patterns)
    }()

    /// "0010xx20" → (mask, value) where 'x' digits are masked out.
    static func pattern(_ text: Substring) -> (UInt32, UInt32)? {
        guard text.count == 8 else { return nil }
        var mask: UInt32 = 0
        var value: UInt32 = 0
        for character in text {
            mask <<= 4
            value <<= 4
            if character == "x" { continue }
            guard let digit = character.hexDigitValue else { return nil }
            mask |= 0xF
            value |= UInt32(digit)
        }
        return (mask, value)
    }

    static func entry(_ tag: Tag) -> Entry? {
        if let entry = table.exact[tag.value] { return entry }
        return table.patterns.first { tag.value & $0.mask == $0.value }?.entry
    }

    /// The dictionary's VR for a tag: group lengths UL, private creators LO, anything unknown UN.
    public static func vr(of tag: Tag) -> VR {
        if tag.isGroupLength { return .UL }
        if tag.isPrivate { return (0x10...0xFF).contains(tag.element) ? .LO : .UN }
        return entry(tag)?.vr ?? .UN
    }

    /// The attribute's keyword (PatientName), or nil for private and unknown tags.
    public static func keyword(of tag: Tag) -> String? { entry(tag).map { String($0.keyword) } }
}
