/// One attribute: its tag, VR and value. Values are held little endian whatever the file's byte order.
public struct Element: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        /// The value's bytes (for strings: the characters, padding included as read).
        case bytes([UInt8])
        /// Items of a sequence.
        case sequence([DataSet])
        /// Encapsulated (compressed) pixel data: the fragment items as read, written back untouched.
        case encapsulated([UInt8])
    }

    public var tag: Tag
    public var vr: VR
    public var value: Value

    public init(_ tag: Tag, _ vr: VR, _ value: Value) {
        self.tag = tag
        self.vr = vr
        self.value = value
    }

    /// A string value without its trailing padding (spaces and NULs), decoded as ISO 8859-1 when not UTF-8.
    public var string: String? {
        guard case .bytes(let bytes) = value, vr.isString else { return nil }
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x20 || bytes[end - 1] == 0 { end -= 1 }
        let trimmed = bytes[..<end]
        return String(validating: trimmed, as: UTF8.self) ?? String(trimmed.map { Character(Unicode.Scalar($0)) })
    }

    /// Backslash-separated values of a multi-valued string.
    public var strings: [String] {
        guard let string else { return [] }
        return string.split(separator: "\\", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: " ")
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var sub = Substring(self)
        while sub.first == set { sub.removeFirst() }
        while sub.last == set { sub.removeLast() }
        return String(sub)
    }
}

/// A data set: attributes by tag, written in tag order.
public struct DataSet: Sendable, Equatable {
    public var elements: [Tag: Element] = [:]

    public init() {}

    public subscript(tag: Tag) -> Element? {
        get { elements[tag] }
        set { elements[tag] = newValue }
    }

    public var sorted: [Element] { elements.values.sorted { $0.tag < $1.tag } }

    /// About the bytes the data set takes written (value bytes plus headers; sequences counted roughly).
    var encodedSizeEstimate: Int {
        elements.values.reduce(0) { total, element in
            switch element.value {
            case .bytes(let bytes): total + bytes.count + 12
            case .encapsulated(let bytes): total + bytes.count + 20
            case .sequence(let items): total + 20 + items.reduce(0) { $0 + $1.encodedSizeEstimate + 16 }
            }
        }
    }

    public func string(_ tag: Tag) -> String? { elements[tag]?.string }

    /// Sets a string attribute (the VR from the dictionary unless given).
    public mutating func set(_ tag: Tag, _ text: String, vr: VR? = nil) {
        let vr = vr ?? DICOMDictionary.vr(of: tag)
        elements[tag] = Element(tag, vr, .bytes(Array(text.utf8)))
    }

    public mutating func remove(_ tag: Tag) { elements[tag] = nil }

    /// The items of a sequence attribute (empty when absent or not a sequence).
    public func items(_ tag: Tag) -> [DataSet] {
        if case .sequence(let items)? = elements[tag]?.value { return items }
        return []
    }
}
