import Foundation

/// One entry of a layer: a directory, a file (its bytes read from `source` when written) or a symbolic link, at a
/// path relative to the image's root (`opt/app/run`, no leading slash).
struct TarEntry: Equatable {
    enum Kind: Equatable {
        case directory
        case file(source: String, size: UInt64)
        case symlink(target: String)
    }

    var path: String
    var kind: Kind
    var mode: UInt32
}

/// Where a tar stream goes.
protocol TarOutput: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Reads from `file` (an open descriptor) into the stream; the bytes read, 0 at the file's end.
    func read(from file: Int32) throws -> Int
}

/// Writes a tar stream that depends only on its entries: POSIX ustar headers (PAX records for paths, link targets
/// or sizes that do not fit), owner 0:0 with no names, one fixed mtime, entries in the order given (the caller
/// sorts them), file contents read straight into the output.
struct TarWriter {
    let mtime: UInt64
    let output: any TarOutput
    /// Hears the size of each piece of file contents read (progress).
    var read: ((Int) -> Void)? = nil

    struct TarError: Error, CustomStringConvertible {
        var description: String
    }

    func write(_ entry: TarEntry) throws {
        var name = entry.path
        var typeflag: UInt8
        var size: UInt64 = 0
        var link = ""
        switch entry.kind {
        case .directory:
            typeflag = UInt8(ascii: "5")
            if !name.hasSuffix("/") { name += "/" }
        case .file(_, let bytes):
            typeflag = UInt8(ascii: "0")
            size = bytes
        case .symlink(let target):
            typeflag = UInt8(ascii: "2")
            link = target
        }
        var pax: [(String, String)] = []
        if name.utf8.count > 100 { pax.append(("path", name)) }
        if link.utf8.count > 100 { pax.append(("linkpath", link)) }
        if size > 0o77777777777 { pax.append(("size", String(size))) }
        if !pax.isEmpty {
            var records = Data()
            for (key, value) in pax { records.append(Self.paxRecord(key, value)) }
            let paxName = "PaxHeaders/" + String(String(name.utf8.suffix(80)) ?? "entry")
            try emit(
                header(name: paxName, typeflag: UInt8(ascii: "x"), size: UInt64(records.count), link: "", mode: 0o644))
            try emit(padded(records))
        }
        try emit(
            header(
                name: String(name.utf8.prefix(100)) ?? "", typeflag: typeflag, size: size > 0o77777777777 ? 0 : size,
                link: String(link.utf8.prefix(100)) ?? "", mode: entry.mode))
        if case .file(let source, let expected) = entry.kind {
            let file = open(source, O_RDONLY | O_CLOEXEC)
            guard file >= 0 else { throw TarError(description: "cannot read \(source)") }
            defer { close(file) }
            var written: UInt64 = 0
            while true {
                let count: Int
                do { count = try output.read(from: file) } catch let error as POSIXError {
                    throw TarError(description: "cannot read \(source): \(error.code)")
                }
                if count == 0 { break }
                written += UInt64(count)
                read?(count)
                guard written <= expected else { throw TarError(description: "\(source) grew while it was read") }
            }
            guard written == expected else { throw TarError(description: "\(source) shrank while it was read") }
            let remainder = Int(written % 512)
            if remainder > 0 { try emit(Data(count: 512 - remainder)) }
        }
    }

    /// The end of the archive: two zero blocks.
    func finish() throws { try emit(Data(count: 1024)) }

    private func emit(_ data: Data) throws { try data.withUnsafeBytes { try output.write($0) } }

    private func padded(_ data: Data) -> Data {
        var out = data
        let remainder = data.count % 512
        if remainder > 0 { out.append(Data(count: 512 - remainder)) }
        return out
    }

    /// "LEN key=value\n" where LEN counts the whole record, itself included.
    static func paxRecord(_ key: String, _ value: String) -> Data {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).count + body.utf8.count > length { length += 1 }
        return Data((String(length) + body).utf8)
    }

    func header(name: String, typeflag: UInt8, size: UInt64, link: String, mode: UInt32) -> Data {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: UInt64, at offset: Int, width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(UInt64(mode & 0o7777), at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(mtime, at: 136, width: 12)
        block[156] = typeflag
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        octal(0, at: 329, width: 8)
        octal(0, at: 337, width: 8)
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        let checksum = block.reduce(0) { $0 + UInt64($1) }
        octal(checksum, at: 148, width: 7)  // six digits, NUL, space
        block[154] = 0
        block[155] = UInt8(ascii: " ")
        return Data(block)
    }
}
