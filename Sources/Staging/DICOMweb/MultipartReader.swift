import Foundation

/// Reads a `multipart/related` body (RFC 2046 §5.1, as WADO-RS answers) fed to it in chunks of any size, and tells
/// its caller of each part's headers, body bytes and end as they arrive: memory holds one chunk plus the delimiter's
/// length, whatever the size of the parts.
///
/// The rules it follows: the delimiter is CRLF, `--`, the boundary; the first one may open the body without its CRLF;
/// text before it (the preamble) and after the closing `--boundary--` (the epilogue) is skipped; a delimiter line
/// may end in spaces or tabs (transport padding) before its CRLF; a part's headers end at an empty line; the CRLF
/// before a delimiter belongs to the delimiter, not to the part.
public struct MultipartReader: Sendable {
    /// What the reader found, in order: `begin`, any number of `bytes`, `end`, for each part.
    public enum Event {
        /// Part `part` (counted from 1) starts; its headers with lower-cased names.
        case begin(part: Int, headers: [String: String])
        /// The next bytes of the current part's body.
        case bytes(ArraySlice<UInt8>)
        /// The current part is complete.
        case end
    }

    enum State {
        case preamble
        case afterDelimiter
        case headers
        case body
        case epilogue
    }

    /// CRLF `--` boundary.
    let delimiter: [UInt8]
    /// A part's headers larger than this are not headers: the body is not what it says it is.
    let maximumHeaderBytes = 64 << 10
    var buffer: [UInt8]
    var start = 0
    var state = State.preamble
    /// Parts begun so far.
    public private(set) var parts = 0

    public init(boundary: String) {
        delimiter = Array("\r\n--\(boundary)".utf8)
        // A virtual CRLF before the body, so that a delimiter opening the body is found like any other.
        buffer = [13, 10]
    }

    /// Whether the closing delimiter has been read.
    public var isComplete: Bool {
        if case .epilogue = state { return true }
        return false
    }

    /// Reads the next chunk of the body, telling `handle` what it completes.
    public mutating func feed(_ chunk: some Collection<UInt8>, _ handle: (Event) throws -> Void) throws {
        if isComplete { return }  // the epilogue is not kept
        if start > 0 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: chunk)
        while try step(handle) {}
    }

    /// Says that the body has ended: an error unless the closing delimiter was read.
    public func finish() throws {
        guard isComplete else {
            throw StagingError(
                .server,
                parts == 0
                    ? "the multipart body has no part (no delimiter with its boundary)"
                    : "the multipart body ends in part \(parts), before its closing boundary: the answer was cut off")
        }
    }

    /// One step of the state machine: whether it made progress (else it needs more bytes).
    mutating func step(_ handle: (Event) throws -> Void) throws -> Bool {
        let available = buffer.count - start
        switch state {
        case .preamble:
            if let found = find(delimiter) {
                start = found + delimiter.count
                state = .afterDelimiter
                return true
            }
            // Keep what may be the start of a delimiter cut by the chunk's end.
            start = max(start, buffer.count - (delimiter.count - 1))
            return false

        case .afterDelimiter:
            // `--` closes the body; else optional transport padding, then CRLF.
            var index = start
            if available >= 2, buffer[index] == 45, buffer[index + 1] == 45 {
                state = .epilogue
                start = buffer.count
                return false
            }
            if available == 1, buffer[index] == 45 { return false }  // `-`: wait for the next byte
            while index < buffer.count, buffer[index] == 32 || buffer[index] == 9 { index += 1 }
            guard index + 1 < buffer.count else {
                if index - start > 1024 { throw malformed("a delimiter line runs on with blanks") }
                return false
            }
            guard buffer[index] == 13, buffer[index + 1] == 10 else {
                throw malformed("a delimiter line of part \(parts + 1) does not end after its boundary")
            }
            start = index + 2
            state = .headers
            return true

        case .headers:
            let headerEnd: Int
            let next: Int
            if available >= 2, buffer[start] == 13, buffer[start + 1] == 10 {
                headerEnd = start  // no headers at all
                next = start + 2
            } else if let found = find([13, 10, 13, 10]) {
                headerEnd = found
                next = found + 4
            } else {
                if available > maximumHeaderBytes { throw malformed("part \(parts + 1) has no end to its headers") }
                return false
            }
            let headers = try Self.parseHeaders(buffer[start..<headerEnd], part: parts + 1)
            start = next
            parts += 1
            state = .body
            try handle(.begin(part: parts, headers: headers))
            return true

        case .body:
            if let found = find(delimiter) {
                if found > start { try handle(.bytes(buffer[start..<found])) }
                try handle(.end)
                start = found + delimiter.count
                state = .afterDelimiter
                return true
            }
            let safe = buffer.count - (delimiter.count - 1)
            if safe > start {
                try handle(.bytes(buffer[start..<safe]))
                start = safe
            }
            return false

        case .epilogue:
            start = buffer.count
            return false
        }
    }

    /// The index of `needle` in the unread bytes (memchr for its first byte, then memcmp: glibc's memmem is not
    /// visible to Swift).
    func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count - start >= needle.count else { return nil }
        return buffer.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { pattern in
                let base = haystack.baseAddress!
                let last = buffer.count - needle.count  // the last index a match may start at
                var index = start
                while index <= last {
                    guard let hit = memchr(base + index, Int32(needle[0]), last - index + 1) else { return nil }
                    index = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + index, pattern.baseAddress!, needle.count) == 0 { return index }
                    index += 1
                }
                return nil
            }
        }
    }

    func malformed(_ what: String) -> StagingError {
        StagingError(.server, "the multipart body is malformed: \(what)")
    }

    /// `Name: value` lines separated by CRLF; a line starting with a blank continues the one before.
    static func parseHeaders(_ bytes: ArraySlice<UInt8>, part: Int) throws -> [String: String] {
        var headers: [String: String] = [:]
        var lastName: String?
        for line in String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n") where !line.isEmpty {
            if line.first == " " || line.first == "\t", let name = lastName {
                headers[name, default: ""] += " " + line.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw StagingError(
                    .server, "the multipart body is malformed: part \(part) has a header line without ':'")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            lastName = name
        }
        return headers
    }

    // MARK: Content-Type

    /// The boundary parameter of a `multipart/…` Content-Type (quoted or not), nil if it is not multipart or has
    /// none.
    public static func boundary(contentType: String) -> String? {
        let (type, parameters) = parseContentType(contentType)
        guard type.hasPrefix("multipart/"), let boundary = parameters["boundary"], !boundary.isEmpty else { return nil }
        return boundary
    }

    /// `type/subtype; name=value; name="quoted; value"` → the lower-cased type and the parameters by lower-cased name.
    static func parseContentType(_ text: String) -> (String, [String: String]) {
        var characters = Substring(text)
        func token() -> String {
            let end = characters.firstIndex(where: { $0 == ";" || $0 == "=" }) ?? characters.endIndex
            defer { characters = characters[end...] }
            return characters[..<end].trimmingCharacters(in: .whitespaces)
        }
        let type = token().lowercased()
        var parameters: [String: String] = [:]
        while characters.first == ";" {
            characters = characters.dropFirst()
            let name = token().lowercased()
            guard characters.first == "=" else { continue }
            characters = characters.dropFirst()
            while characters.first == " " { characters = characters.dropFirst() }
            var value = ""
            if characters.first == "\"" {
                characters = characters.dropFirst()
                while let next = characters.first, next != "\"" {
                    if next == "\\", characters.count > 1 {
                        characters = characters.dropFirst()
                    }
                    value.append(characters.first!)
                    characters = characters.dropFirst()
                }
                characters = characters.dropFirst()  // the closing quote
                if let end = characters.firstIndex(of: ";") { characters = characters[end...] } else { characters = "" }
            } else {
                value = token()
            }
            if !name.isEmpty { parameters[name] = value }
        }
        return (type, parameters)
    }
}

/// Splits a multipart body stored in a file into one file per part, reading `chunkSize` bytes at a time: `0001.dcm`,
/// `0002.dcm`, … in `directory`. Each part is written under a hidden temporary name and renamed when complete, so a
/// part file either is whole or does not exist. A part whose Content-Type is not `mediaType` or whose Content-Length
/// does not match its body is an error.
struct MultipartFileSplitter {
    var boundary: String
    var mediaType = "application/dicom"
    var chunkSize = 1 << 20
    var fileExtension = "dcm"

    /// The part files written, in order. `progress` is told the number of parts and bytes written after each part.
    func split(_ file: URL, into directory: URL, progress: ((Int, Int64) -> Void)? = nil) throws -> [URL] {
        let input = try FileHandle(forReadingFrom: file)
        defer { try? input.close() }
        var reader = MultipartReader(boundary: boundary)
        var written: [URL] = []
        var total: Int64 = 0
        var current: (handle: FileHandle, temporary: URL, final: URL, length: Int64?, count: Int64)?
        defer {
            if let current {
                try? current.handle.close()
                try? FileManager.default.removeItem(at: current.temporary)
            }
        }
        func handle(_ event: MultipartReader.Event) throws {
            switch event {
            case .begin(let index, let headers):
                if let type = headers["content-type"],
                    MultipartReader.parseContentType(type).0 != mediaType
                {
                    throw StagingError(.server, "part \(index) of the answer is \(type), not \(mediaType)")
                }
                let name = String(format: "%04d.\(fileExtension)", index)
                let temporary = directory.appendingPathComponent(".\(name).partial")
                guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
                    throw StagingError(.usage, "\(directory.path): cannot write \(temporary.lastPathComponent)")
                }
                let length = headers["content-length"].flatMap { Int64($0) }
                current = (
                    try FileHandle(forWritingTo: temporary), temporary, directory.appendingPathComponent(name), length,
                    0
                )
            case .bytes(let bytes):
                try current!.handle.write(contentsOf: bytes)
                current!.count += Int64(bytes.count)
            case .end:
                let part = current!
                if let length = part.length, length != part.count {
                    throw StagingError(
                        .server,
                        "part \(written.count + 1) of the answer has \(part.count) bytes, its Content-Length says \(length)"
                    )
                }
                try part.handle.synchronize()
                try part.handle.close()
                guard rename(part.temporary.path, part.final.path) == 0 else {
                    throw StagingError(
                        .usage, "\(part.final.path): cannot rename the part file (\(String(cString: strerror(errno))))")
                }
                current = nil
                written.append(part.final)
                total += part.count
                progress?(written.count, total)
            }
        }
        while let chunk = try input.read(upToCount: chunkSize), !chunk.isEmpty {
            try reader.feed(chunk, handle)
            if reader.isComplete { break }
        }
        try reader.finish()
        return written
    }
}
