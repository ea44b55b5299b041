import Foundation
import TestBeds
import Testing

@testable import Staging

@Suite(
    "DICOM Part 10 reading and writing",
    .enabled(if: Synthetic.available, "needs python3 with pydicom (`make deps`)"))
struct Part10Tests {
    @Test("the three uncompressed transfer syntaxes read to the same data set, pixel values and sequences included")
    func syntaxes() throws {
        let explicit = try Synthetic(patients: 1, syntax: "explicit-le", slices: 4)
        let implicit = try Synthetic(patients: 1, syntax: "implicit-le", slices: 4)
        let big = try Synthetic(patients: 1, syntax: "explicit-be", slices: 4)
        defer { [explicit, implicit, big].forEach { $0.remove() } }
        let series = explicit.truth.patients[0].series[0]
        for file in series.files {
            let a = try explicit.read(file).dataset
            let b = try implicit.read(file).dataset
            let c = try big.read(file).dataset
            // Implicit VR files carry no VR: the dictionary supplies it, so compare tags and values.
            for (tag, element) in a.elements {
                #expect(b[tag]?.value == element.value, "implicit \(tag)")
                #expect(c[tag]?.value == element.value, "big endian \(tag)")
            }
            #expect(a.elements.keys.sorted() == c.elements.keys.sorted())
            #expect(!a.items(Tag(0x0040, 0x0275)).isEmpty, "the request attributes sequence is read as items")
        }
        // Pixel values follow the phantom: stored = HU + 1024, HU = -1000 + 3 col + 5 row + 7 slice.
        let file = try explicit.read(series.files[0])
        let slice = Int(file.dataset.string(.instanceNumber) ?? "1")! - 1
        guard case .bytes(let pixels)? = file.dataset[.pixelData]?.value else { throw StagingError(.malformed, "") }
        let columns = 40
        for (row, col) in [(0, 0), (3, 7), (20, 39)] {
            let offset = 2 * (row * columns + col)
            let stored = Int(Int16(bitPattern: UInt16(pixels[offset]) | UInt16(pixels[offset + 1]) << 8))
            #expect(stored == -1000 + 3 * col + 5 * row + 7 * slice + 1024)
        }
    }

    @Test("a written file reads back equal, and dcmtk's dcmdump reads it as explicit VR little endian")
    func roundTrip() throws {
        let big = try Synthetic(patients: 1, syntax: "explicit-be", slices: 3)
        defer { big.remove() }
        let file = try big.read(big.truth.patients[0].series[0].files[0])
        let bytes = Part10.write(file)
        let again = try Part10.read(bytes, path: "written")
        #expect(again.dataset == file.dataset)
        #expect(again.transferSyntax == TransferSyntax.explicitLittle)
        #expect(again.meta.string(.mediaStorageSOPInstanceUID) == file.dataset.string(.sopInstanceUID))
        let path = scratch("written") + ".dcm"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/dcmdump") {
            let dump = try runProgram("/usr/bin/dcmdump", ["-E", path])
            #expect(dump.status == 0, "\(dump.output)")
            #expect(dump.output.contains("LittleEndianExplicit"))
        }
    }

    @Test("a file that is not DICOM, or is cut short, gives a malformed error naming the file")
    func malformed() throws {
        #expect(throws: StagingError.self) { try Part10.read(Array("hello".utf8), path: "notes.txt") }
        let explicit = try Synthetic(patients: 1, extras: false, slices: 3)
        defer { explicit.remove() }
        let name = explicit.truth.patients[0].series[0].files[0]
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: explicit.path(name))))
        let error = #expect(throws: StagingError.self) {
            try Part10.read(Array(bytes.prefix(bytes.count / 2)), path: name)
        }
        #expect(error?.code == .malformed)
        #expect(error?.message.hasPrefix(name) == true)
    }

    @Test("encapsulated pixel data passes through untouched")
    func encapsulated() throws {
        var set = DataSet()
        set.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.2")
        set.set(.sopInstanceUID, "1.2.3")
        // Basic offset table (empty) and one fragment.
        let fragments: [UInt8] = [0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4]
        set[.pixelData] = Element(.pixelData, .OB, .encapsulated(fragments))
        var meta = DataSet()
        meta.set(.transferSyntaxUID, "1.2.840.10008.1.2.4.70")
        let bytes = Part10.write(DICOMFile(meta: meta, dataset: set))
        let back = try Part10.read(bytes, path: "jpeg")
        #expect(back.transferSyntax == "1.2.840.10008.1.2.4.70")
        #expect(back.dataset[.pixelData]?.value == .encapsulated(fragments))
    }
}
