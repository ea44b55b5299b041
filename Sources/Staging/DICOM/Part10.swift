import Foundation

/// A DICOM Part 10 file: its file meta information and its data set.
public struct DICOMFile: Sendable, Equatable {
    public var meta: DataSet
    public var dataset: DataSet

    public init(meta: DataSet, dataset: DataSet) {
        self.meta = meta
        self.dataset = dataset
    }

    public var transferSyntax: String { meta.string(.transferSyntaxUID) ?? TransferSyntax.implicitLittle }
}

/// Transfer syntax UIDs this reader knows by name; other (compressed) syntaxes are explicit VR little endian with
/// encapsulated pixel data, which is passed through.
public enum TransferSyntax {
    public static let implicitLittle = "1.2.840.10008.1.2"
    public static let explicitLittle = "1.2.840.10008.1.2.1"
    public static let deflatedExplicitLittle = "1.2.840.10008.1.2.1.99"
    public static let explicitBig = "1.2.840.10008.1.2.2"
}

/// Reads and writes Part 10 files: explicit and implicit VR little endian and explicit VR big endian in;
/// sequences and items of defined and undefined length; encapsulated pixel data kept as read. Files are written
/// explicit VR little endian (or in their compressed syntax, untouched), with the file meta rewritten from the data
/// set: SOP class and instance, transfer syntax, this implementation's UID.
public enum Part10 {
    /// deployctl's implementation class UID (a 2.25 UUID-derived UID) and version name.
    public static let implementationClassUID = "2.25.238310431945018046163853935937461651231"
    public static let implementationVersionName = "DEPLOYCTL_1"

    /// Reads a whole file; with `stop`, the data set ends before the first top-level attribute at or past it.
    public static func read(_ bytes: [UInt8], path: String, stop: Tag? = nil) throws(StagingError) -> DICOMFile {
        guard bytes.count >= 132, bytes[128..<132].elementsEqual("DICM".utf8) else {
            throw StagingError(.malformed, "\(path): not a DICOM Part 10 file (no DICM prefix after the preamble)")
        }
        var meta = Parser(bytes: bytes, offset: 132, explicit: true, little: true, path: path)
        let metaSet = try meta.dataSet(until: nil, stopAtGroupChange: 0x0002)
        let syntax = metaSet.string(.transferSyntaxUID) ?? TransferSyntax.explicitLittle
        if syntax == TransferSyntax.deflatedExplicitLittle {
            throw StagingError(.malformed, "\(path): deflated transfer syntax is not supported")
        }
        var body = Parser(
            bytes: bytes, offset: meta.offset, explicit: syntax != TransferSyntax.implicitLittle,
            little: syntax != TransferSyntax.explicitBig, path: path)
        let dataset = try body.dataSet(until: nil, stopAtGroupChange: nil, stop: stop)
        return DICOMFile(meta: metaSet, dataset: dataset)
    }

    /// The attributes before `stop` (by default the pixel data), read from the file's first 16 KiB when they fit
    /// (the whole file otherwise): what listing a directory of instances needs, without reading their pixels.
    public static func readHeader(path: String, stop: Tag = .pixelData) throws(StagingError) -> DICOMFile {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StagingError(.malformed, "\(path): cannot be read")
        }
        defer { try? handle.close() }
        let prefix = Array((try? handle.read(upToCount: 16 << 10)) ?? Data())
        if let file = try? read(prefix, path: path, stop: stop) { return file }
        let rest = Array((try? handle.readToEnd()) ?? Data())
        return try read(prefix + rest, path: path, stop: stop)
    }

    /// The file's bytes: preamble, rewritten file meta, then the data set in the output transfer syntax.
    public static func write(_ file: DICOMFile) -> [UInt8] {
        let parts = segments(file)
        var out: [UInt8] = []
        out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { out.append(contentsOf: part) }
        return out
    }

    /// The file's bytes as consecutive segments: large values (pixel data) are their own segment, shared with the
    /// data set rather than copied, so a writer can hand them to the kernel as they are.
    public static func segments(_ file: DICOMFile) -> [[UInt8]] {
        let syntax = outputSyntax(for: file.transferSyntax)
        var meta = DataSet()
        meta[.fileMetaInformationVersion] = Element(.fileMetaInformationVersion, .OB, .bytes([0, 1]))
        meta.set(.mediaStorageSOPClassUID, file.dataset.string(.sopClassUID) ?? "", vr: .UI)
        meta.set(.mediaStorageSOPInstanceUID, file.dataset.string(.sopInstanceUID) ?? "", vr: .UI)
        meta.set(.transferSyntaxUID, syntax, vr: .UI)
        meta.set(.implementationClassUID, implementationClassUID, vr: .UI)
        meta.set(.implementationVersionName, implementationVersionName, vr: .SH)
        var metaEncoding = Encoding()
        for element in meta.sorted { encode(element, into: &metaEncoding) }
        let metaBytes = metaEncoding.finish().flatMap { $0 }
        var out = Encoding()
        out.buffer.reserveCapacity(8192)
        out.buffer.append(contentsOf: repeatElement(0, count: 128))
        out.buffer.append(contentsOf: "DICM".utf8)
        var length: [UInt8] = []
        append32(UInt32(metaBytes.count), to: &length)
        encode(Element(.fileMetaInformationGroupLength, .UL, .bytes(length)), into: &out)
        out.buffer.append(contentsOf: metaBytes)
        for element in file.dataset.sorted where element.tag.group > 0x0002 && !element.tag.isGroupLength {
            encode(element, into: &out)
        }
        return out.finish()
    }

    /// Bytes being encoded: small pieces gathered in `buffer`, values of 64 KiB or more kept as segments.
    struct Encoding {
        var segments: [[UInt8]] = []
        var buffer: [UInt8] = []

        mutating func append(_ value: [UInt8]) {
            guard value.count >= 64 << 10 else {
                buffer.append(contentsOf: value)
                return
            }
            if !buffer.isEmpty { segments.append(buffer) }
            segments.append(value)
            buffer = []
        }

        mutating func finish() -> [[UInt8]] {
            if !buffer.isEmpty { segments.append(buffer) }
            buffer = []
            return segments
        }
    }

    /// Compressed syntaxes stay as they are; the uncompressed ones become explicit VR little endian.
    static func outputSyntax(for syntax: String) -> String {
        [TransferSyntax.implicitLittle, TransferSyntax.explicitLittle, TransferSyntax.explicitBig].contains(syntax)
            ? TransferSyntax.explicitLittle : syntax
    }

    static func encode(_ element: Element, into out: inout Encoding) {
        var vr = element.vr
        append16(element.tag.group, to: &out.buffer)
        append16(element.tag.element, to: &out.buffer)
        switch element.value {
        case .bytes(let bytes):
            let padded = bytes.count % 2 == 1
            let count = bytes.count + (padded ? 1 : 0)
            if !vr.hasLongLength && count > 0xFFFF { vr = .UN }
            header(vr, length: UInt32(count), into: &out.buffer)
            out.append(bytes)
            if padded { out.buffer.append(vr.padding) }
        case .sequence(let items):
            header(.SQ, length: 0xFFFF_FFFF, into: &out.buffer)
            for item in items {
                delimiter(0xE000, length: 0xFFFF_FFFF, into: &out.buffer)
                for child in item.sorted where !child.tag.isGroupLength { encode(child, into: &out) }
                delimiter(0xE00D, length: 0, into: &out.buffer)
            }
            delimiter(0xE0DD, length: 0, into: &out.buffer)
        case .encapsulated(let fragments):
            header(vr, length: 0xFFFF_FFFF, into: &out.buffer)
            out.append(fragments)
            delimiter(0xE0DD, length: 0, into: &out.buffer)
        }
    }

    static func delimiter(_ element: UInt16, length: UInt32, into out: inout [UInt8]) {
        append16(0xFFFE, to: &out)
        append16(element, to: &out)
        append32(length, to: &out)
    }

    static func header(_ vr: VR, length: UInt32, into out: inout [UInt8]) {
        out.append(contentsOf: vr.rawValue.utf8)
        if vr.hasLongLength {
            append16(0, to: &out)
            append32(length, to: &out)
        } else {
            append16(UInt16(length), to: &out)
        }
    }

    static func append16(_ value: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(value & 0xFF))
        out.append(UInt8(value >> 8))
    }

    static func append32(_ value: UInt32, to out: inout [UInt8]) {
        append16(UInt16(value & 0xFFFF), to: &out)
        append16(UInt16(value >> 16), to: &out)
    }
}

/// A cursor over a file's bytes in one encoding.
struct Parser {
    let bytes: [UInt8]
    var offset: Int
    let explicit: Bool
    let little: Bool
    let path: String

    func fail(_ what: String) -> StagingError {
        StagingError(.malformed, "\(path): \(what) at byte \(offset)")
    }

    mutating func u16() throws(StagingError) -> UInt16 {
        guard offset + 2 <= bytes.count else { throw fail("file ends inside an element") }
        let a = UInt16(bytes[offset])
        let b = UInt16(bytes[offset + 1])
        offset += 2
        return little ? a | b << 8 : a << 8 | b
    }

    mutating func u32() throws(StagingError) -> UInt32 {
        let a = UInt32(try u16())
        let b = UInt32(try u16())
        return little ? a | b << 16 : a << 16 | b
    }

    mutating func tag() throws(StagingError) -> Tag { Tag(try u16(), try u16()) }

    /// Elements until `end` (a defined length), an item delimiter, or the end of the file; `stopAtGroupChange`
    /// ends the file meta at the first element outside group 0002.
    mutating func dataSet(
        until end: Int?, stopAtGroupChange group: UInt16?, stop: Tag? = nil
    ) throws(StagingError) -> DataSet {
        var set = DataSet()
        set.elements.reserveCapacity(end == nil ? 96 : 8)
        while offset < (end ?? bytes.count) {
            if let group {
                guard offset + 2 <= bytes.count else { break }
                let next = UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
                if next != group { break }
            }
            let start = offset
            let tag = try self.tag()
            if tag == .itemDelimitation {
                _ = try u32()
                return set
            }
            if tag.group == 0xFFFE {
                offset = start
                throw fail("unexpected item tag \(tag)")
            }
            if let stop, tag >= stop {
                offset = start
                return set
            }
            let element = try self.element(tag)
            set[tag] = element
        }
        if let end, offset != end { throw fail("an item's length does not match its contents") }
        return set
    }

    mutating func element(_ tag: Tag) throws(StagingError) -> Element {
        var vr: VR
        let length: UInt32
        if explicit {
            guard offset + 2 <= bytes.count else { throw fail("file ends inside \(tag)") }
            let code = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            guard let known = VR.byCode[code] else {
                throw fail("unknown VR '\(String(decoding: bytes[offset..<offset + 2], as: UTF8.self))' for \(tag)")
            }
            offset += 2
            vr = known
            if vr.hasLongLength {
                offset += 2
                length = try u32()
            } else {
                length = UInt32(try u16())
            }
        } else {
            vr = DICOMDictionary.vr(of: tag)
            length = try u32()
        }
        if length == 0xFFFF_FFFF {
            if tag == .pixelData { return Element(tag, vr == .OW ? .OB : vr, .encapsulated(try fragments(tag))) }
            if vr == .SQ { return Element(tag, .SQ, .sequence(try items(until: nil))) }
            if vr == .UN {
                // An undefined-length UN is a sequence encoded implicit VR little endian (PS3.5 §6.2.2).
                var inner = Parser(bytes: bytes, offset: offset, explicit: false, little: true, path: path)
                let items = try inner.items(until: nil)
                offset = inner.offset
                return Element(tag, .SQ, .sequence(items))
            }
            throw fail("undefined length on \(tag) (\(vr.rawValue))")
        }
        let count = Int(length)
        guard offset + count <= bytes.count else { throw fail("\(tag) is longer than the file") }
        if vr == .SQ { return Element(tag, .SQ, .sequence(try items(until: offset + count))) }
        var value = Array(bytes[offset..<offset + count])
        offset += count
        if !little && vr.wordSize > 1 { Self.swap(&value, wordSize: vr.wordSize) }
        return Element(tag, vr, .bytes(value))
    }

    /// Items of a sequence, until `end` or a sequence delimiter.
    mutating func items(until end: Int?) throws(StagingError) -> [DataSet] {
        var items: [DataSet] = []
        while offset < (end ?? bytes.count) {
            let tag = try self.tag()
            let length = try u32()
            if tag == .sequenceDelimitation { return items }
            guard tag == .item else { throw fail("expected an item in a sequence, found \(tag)") }
            if length == 0xFFFF_FFFF {
                items.append(try dataSet(until: nil, stopAtGroupChange: nil))
            } else {
                guard offset + Int(length) <= bytes.count else { throw fail("an item is longer than the file") }
                items.append(try dataSet(until: offset + Int(length), stopAtGroupChange: nil))
            }
        }
        if end == nil { throw fail("a sequence has no delimiter") }
        return items
    }

    /// The raw items of encapsulated pixel data, up to (not including) its sequence delimiter.
    mutating func fragments(_ tag: Tag) throws(StagingError) -> [UInt8] {
        let start = offset
        while true {
            let here = offset
            let item = try self.tag()
            let length = Int(try u32())
            if item == .sequenceDelimitation { return Array(bytes[start..<here]) }
            guard item == .item, offset + length <= bytes.count else { throw fail("broken fragment in \(tag)") }
            offset += length
        }
    }

    static func swap(_ value: inout [UInt8], wordSize: Int) {
        var index = 0
        while index + wordSize <= value.count {
            value[index..<index + wordSize].reverse()
            index += wordSize
        }
    }
}
