import Foundation
import Synchronization
import TestBeds
import Testing

@testable import Staging

/// A temporary directory, removed with the value.
final class ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("deployctl-staging-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func appending(_ name: String) -> URL { url.appendingPathComponent(name) }
}

@Suite(
    "DICOMweb against a real Orthanc", .serialized,
    .enabled(if: OrthancTestBed.available, "needs Orthanc 1.10 and its DICOMweb plugin (orthanc, orthanc-dicomweb)"))
struct DICOMwebClientTests {
    @Test("QIDO-RS by PatientID or AccessionNumber finds that patient's study and not the other patient's")
    func searchByPatient() async throws {
        let scratch = try ScratchDirectory()
        let studies = try Synthetic(in: scratch)
        let orthanc = try await OrthancTestBed()
        try await studies.upload(to: orthanc)
        let client = DICOMwebClient(baseURL: orthanc.baseURL)
        let (first, second) = (studies.truth.patients[0], studies.truth.patients[1])

        let found = try await client.searchStudies(StudyQuery(patientID: first.PatientID))
        #expect(found.map(\.studyInstanceUID) == [first.StudyInstanceUID])
        let match = try #require(found.first)
        #expect(match.patientID == first.PatientID)
        #expect(match.studyDate == first.StudyDate)
        #expect(match.accessionNumber == first.planted_fields["AccessionNumber"])
        let instances = first.series.map(\.instances).reduce(0, +) + (first.screenshot == nil ? 0 : 1)
        #expect(match.numberOfInstances == instances)

        let byAccession = try await client.searchStudies(
            StudyQuery(accessionNumber: second.planted_fields["AccessionNumber"]))
        #expect(byAccession.map(\.studyInstanceUID) == [second.StudyInstanceUID])
        let all = try await client.searchStudies(StudyQuery())
        #expect(Set(all.map(\.studyInstanceUID)) == [first.StudyInstanceUID, second.StudyInstanceUID])
        #expect(try await client.searchStudies(StudyQuery(patientID: "NOBODY")).isEmpty)
        let byUID = try await client.searchStudies(StudyQuery(studyInstanceUID: second.StudyInstanceUID))
        #expect(byUID.map(\.patientID) == [second.PatientID])
    }

    @Test("a study date range finds the studies of those days only; open ends work; a bad date is a usage error")
    func searchByDate() async throws {
        let scratch = try ScratchDirectory()
        let studies = try Synthetic(in: scratch)
        let orthanc = try await OrthancTestBed()
        try await studies.upload(to: orthanc)
        let client = DICOMwebClient(baseURL: orthanc.baseURL)
        let patients = studies.truth.patients.sorted { $0.StudyDate < $1.StudyDate }
        let (earlier, later) = (patients[0], patients[1])
        #expect(earlier.StudyDate < later.StudyDate)

        func uids(_ query: StudyQuery) async throws -> Set<String> {
            Set(try await client.searchStudies(query).map(\.studyInstanceUID))
        }
        #expect(
            try await uids(StudyQuery(studyDateFrom: earlier.StudyDate, studyDateTo: earlier.StudyDate))
                == [earlier.StudyInstanceUID])
        #expect(try await uids(StudyQuery(studyDateTo: earlier.StudyDate)) == [earlier.StudyInstanceUID])
        #expect(try await uids(StudyQuery(studyDateFrom: later.StudyDate)) == [later.StudyInstanceUID])
        #expect(
            try await uids(StudyQuery(studyDateFrom: earlier.StudyDate, studyDateTo: later.StudyDate))
                == [earlier.StudyInstanceUID, later.StudyInstanceUID])
        #expect(try await uids(StudyQuery(studyDateFrom: "19000101", studyDateTo: "19001231")).isEmpty)
        #expect(
            try await uids(StudyQuery(patientID: later.PatientID, studyDateTo: earlier.StudyDate)).isEmpty)

        let error = await #expect(throws: StagingError.self) {
            try await client.searchStudies(StudyQuery(studyDateFrom: "2024-01-01"))
        }
        #expect(error?.code == .usage)
    }

    @Test("the series search returns both CT series with their instance counts; modality and body part filter")
    func searchSeries() async throws {
        let scratch = try ScratchDirectory()
        let studies = try Synthetic(in: scratch)
        let orthanc = try await OrthancTestBed()
        try await studies.upload(to: orthanc)
        let client = DICOMwebClient(baseURL: orthanc.baseURL)
        let patient = studies.truth.patients[0]

        let ct = try await client.searchSeries(study: patient.StudyInstanceUID, modality: "CT")
        #expect(Set(ct.map(\.seriesInstanceUID)) == Set(patient.series.map(\.SeriesInstanceUID)))
        for series in patient.series {
            let match = try #require(ct.first { $0.seriesInstanceUID == series.SeriesInstanceUID })
            #expect(match.numberOfInstances == series.instances)
            #expect(match.modality == "CT")
            #expect(match.bodyPartExamined == "ABDOMEN")
        }
        let all = try await client.searchSeries(study: patient.StudyInstanceUID)
        #expect(all.count == patient.series.count + (patient.screenshot == nil ? 0 : 1))
        if let screenshot = patient.screenshot {
            #expect(all.first { $0.seriesInstanceUID == screenshot.SeriesInstanceUID }?.modality == "OT")
        }
        #expect(try await client.searchSeries(study: patient.StudyInstanceUID, bodyPart: "ABDOMEN").count == 2)
        #expect(try await client.searchSeries(study: patient.StudyInstanceUID, bodyPart: "HEAD").isEmpty)

        // Body part at study level goes through the series.
        let abdomen = try await client.searchStudies(StudyQuery(modality: "CT", bodyPart: "ABDOMEN"))
        #expect(abdomen.count == 2)
        #expect(try await client.searchStudies(StudyQuery(bodyPart: "HEAD")).isEmpty)
        #expect(try await client.searchStudies(StudyQuery(modality: "OT", bodyPart: "ABDOMEN")).isEmpty)
        let one = try await client.searchStudies(StudyQuery(patientID: patient.PatientID, bodyPart: "ABDOMEN"))
        #expect(one.map(\.studyInstanceUID) == [patient.StudyInstanceUID])
    }

    @Test("WADO-RS retrieves every instance of a series, each file byte-identical to the one uploaded")
    func retrieveSeries() async throws {
        let scratch = try ScratchDirectory()
        let studies = try Synthetic(in: scratch)
        let orthanc = try await OrthancTestBed()
        try await studies.upload(to: orthanc)
        let client = DICOMwebClient(baseURL: orthanc.baseURL)
        let patient = studies.truth.patients[1]
        let series = patient.series[1]
        let uploaded = try series.files.map { try Data(contentsOf: URL(fileURLWithPath: studies.path($0))) }

        let progress = ProgressLog()
        let target = scratch.appending("retrieved/series")
        let files = try await client.retrieveSeries(
            study: patient.StudyInstanceUID, series: series.SeriesInstanceUID, into: target,
            progress: { progress.record($0, $1) })
        #expect(files.count == series.instances)
        #expect(files.map(\.lastPathComponent) == (1...series.instances).map { String(format: "%04d.dcm", $0) })
        let retrieved = try files.map { try Data(contentsOf: $0) }
        #expect(
            retrieved.sorted { $0.lexicographicallyPrecedes($1) }
                == uploaded.sorted { $0.lexicographicallyPrecedes($1) })
        // Nothing else in the directory: the temporary part files were renamed.
        let listed = try FileManager.default.contentsOfDirectory(atPath: target.path).sorted()
        #expect(listed == files.map(\.lastPathComponent))
        let steps = progress.steps
        #expect(steps.map(\.0) == Array(1...series.instances))
        #expect(steps.last?.1 == Int64(uploaded.map(\.count).reduce(0, +)))
    }

    @Test("basic authentication: the right password works; a wrong one fails at once, without the password")
    func basicAuthentication() async throws {
        let scratch = try ScratchDirectory()
        let studies = try Synthetic(in: scratch)
        let orthanc = try await OrthancTestBed(credentials: ("radiology", "right-horse-battery"))
        try await orthanc.upload(file: studies.files[0])
        let name = studies.files[0].lastPathComponent
        let patient = try #require(studies.truth.patients.first { $0.series.contains { $0.files.contains(name) } })

        let good = DICOMwebClient(
            baseURL: orthanc.baseURL, auth: .basic(user: "radiology", password: "right-horse-battery"))
        let found = try await good.searchStudies(StudyQuery())
        #expect(found.map(\.studyInstanceUID) == [patient.StudyInstanceUID])

        for (auth, secret, words) in [
            (
                DICOMwebClient.Auth.basic(user: "radiology", password: "wrong-donkey"), "wrong-donkey",
                "refused the credentials given"
            ),
            (.none, "", "asks for credentials"),
            (.bearer(token: "not-a-token-orthanc-knows"), "not-a-token-orthanc-knows", "refused the credentials given"),
        ] {
            // A 401 that FoundationNetworking leaves hanging would last the whole request timeout (120 s here);
            // an answered one takes milliseconds. 60 s tells them apart even on a loaded machine.
            let client = DICOMwebClient(baseURL: orthanc.baseURL, auth: auth, requestTimeout: 120)
            let started = ContinuousClock.now
            let error = await #expect(throws: StagingError.self) {
                try await client.searchStudies(StudyQuery(patientID: "SECRET-ID"))
            }
            #expect(ContinuousClock.now - started < .seconds(60))
            let message = try #require(error).message
            #expect(error?.code == .usage)
            #expect(message.contains(words), "\(message)")
            #expect(message.contains("/dicom-web/studies"), "\(message)")
            #expect(!secret.isEmpty ? !message.contains(secret) : true, "\(message)")
            #expect(!message.contains("SECRET-ID"), "\(message)")
            #expect(!message.contains("Basic "), "\(message)")
        }
    }

    @Test("an unknown study or series is a clear server error naming the path and the status")
    func unknownStudy() async throws {
        let scratch = try ScratchDirectory()
        let studies = try Synthetic(in: scratch)
        let orthanc = try await OrthancTestBed()
        try await orthanc.upload(file: studies.files[0])
        let client = DICOMwebClient(baseURL: orthanc.baseURL)

        let retrieve = await #expect(throws: StagingError.self) {
            try await client.retrieveSeries(study: "1.2.3.4", series: "5.6.7.8", into: scratch.appending("out"))
        }
        #expect(retrieve?.code == .server)
        #expect(
            retrieve?.message.hasPrefix("GET /dicom-web/studies/1.2.3.4/series/5.6.7.8: HTTP 404") == true,
            "\(retrieve?.message ?? "")")
        let search = await #expect(throws: StagingError.self) {
            try await client.searchSeries(study: "1.2.3.4")
        }
        #expect(search?.code == .server)
        #expect(search?.message.contains("no study 1.2.3.4") == true, "\(search?.message ?? "")")
        let notUID = await #expect(throws: StagingError.self) {
            try await client.searchSeries(study: "../../instances")
        }
        #expect(notUID?.code == .usage)
    }

    @Test("a server that is gone: three tries, then an error naming the path but not the query")
    func serverGone() async throws {
        let orthanc = try await OrthancTestBed()
        orthanc.stop()
        let client = DICOMwebClient(baseURL: orthanc.baseURL, auth: .none, requestTimeout: 5, firstRetryDelay: 0.05)
        let error = await #expect(throws: StagingError.self) {
            try await client.searchStudies(StudyQuery(patientID: "SECRET-ID", accessionNumber: "ACC-SECRET"))
        }
        let message = try #require(error).message
        #expect(error?.code == .server)
        #expect(message.contains("GET /dicom-web/studies: no answer"), "\(message)")
        #expect(message.contains("after 3 tries"), "\(message)")
        #expect(!message.contains("SECRET"), "\(message)")
    }
}

/// A scripted HTTP server (Python's http.server): answers requests with the given answers in order, one per
/// connection, and logs each request's path, decoded query and headers. For what a real PACS will not do on demand:
/// fail with 5xx, cut an answer short, show what arrived.
final class ScriptedServer {
    struct Answer: Encodable {
        var status: Int
        var headers: [String: String] = [:]
        var body = ""
    }

    struct Request: Decodable {
        var path: String
        var query: [String: String]
        var authorization: String?
        var accept: String?
    }

    static let program = """
        import json, os, sys, threading
        from http.server import BaseHTTPRequestHandler, HTTPServer
        from urllib.parse import urlsplit, parse_qsl
        answers = json.load(open(sys.argv[1]))
        threading.Timer(1800, lambda: os._exit(3)).start()
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                url = urlsplit(self.path)
                with open(sys.argv[2], "a") as log:
                    log.write(json.dumps({"path": url.path, "query": dict(parse_qsl(url.query)),
                        "authorization": self.headers.get("Authorization"), "accept": self.headers.get("Accept")}) + "\\n")
                answer = answers.pop(0) if answers else {"status": 599, "headers": {}, "body": "no more answers"}
                body = answer["body"].encode("latin-1")
                self.send_response(answer["status"])
                for name, value in answer["headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
            def log_message(self, *arguments):
                pass
        server = HTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    let scratch: ScratchDirectory
    let process = Process()
    let port: Int

    init(_ answers: [Answer]) throws {
        scratch = try ScratchDirectory()
        try JSONEncoder().encode(answers).write(to: scratch.appending("answers.json"))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c", Self.program, scratch.appending("answers.json").path, scratch.appending("requests").path,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(10) {
            let more = output.fileHandleForReading.availableData
            guard !more.isEmpty else { break }
            line.append(more)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw StagingError(.tool, "the scripted server did not start") }
        self.port = port
    }

    deinit {
        // SIGKILL: a process started from a concurrency thread inherits its blocked SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)/dicom-web/")! }

    var requests: [Request] {
        let text = (try? String(contentsOf: scratch.appending("requests"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }
}

@Suite("DICOMweb requests against a scripted server", .serialized)
struct DICOMwebRequestTests {
    @Test("429 and 5xx answers are tried again, three tries in all; the error names the status, not the query")
    func retries() async throws {
        let json = ["Content-Type": "application/dicom+json"]
        let recovering = try ScriptedServer([
            .init(status: 503, body: "busy"), .init(status: 429, headers: ["Retry-After": "0"]),
            .init(status: 200, headers: json, body: "[]"),
        ])
        let client = DICOMwebClient(
            baseURL: recovering.baseURL, auth: .none, requestTimeout: 5, firstRetryDelay: 0.05)
        #expect(try await client.searchStudies(StudyQuery(patientID: "SECRET-ID")).isEmpty)
        #expect(recovering.requests.count == 3)

        let failing = try ScriptedServer(
            Array(repeating: .init(status: 500, body: "cannot search PatientID=SECRET-ID\r\n\tnow"), count: 4))
        let failingClient = DICOMwebClient(
            baseURL: failing.baseURL, auth: .none, requestTimeout: 5, firstRetryDelay: 0.05)
        let error = await #expect(throws: StagingError.self) {
            try await failingClient.searchStudies(StudyQuery(patientID: "SECRET-ID"))
        }
        #expect(failing.requests.count == 3)
        #expect(error?.code == .server)
        #expect(
            error?.message == "GET /dicom-web/studies: HTTP 500 Internal Server Error: cannot search PatientID=… now")

        let notFound = try ScriptedServer([.init(status: 404, body: "no")])
        let once = DICOMwebClient(baseURL: notFound.baseURL, auth: .none, requestTimeout: 5, firstRetryDelay: 0.05)
        await #expect(throws: StagingError.self) { try await once.searchStudies(StudyQuery()) }
        #expect(notFound.requests.count == 1)
    }

    @Test("query values are percent-encoded (+ & = and spaces arrive as sent); a bearer token is sent as such")
    func queryAndBearer() async throws {
        let server = try ScriptedServer([
            .init(status: 200, headers: ["Content-Type": "application/dicom+json"], body: "[]")
        ])
        let client = DICOMwebClient(baseURL: server.baseURL, auth: .bearer(token: "tok-123"))
        _ = try await client.searchStudies(
            StudyQuery(patientID: "A+B&C=D E", studyDateFrom: "20240101", modality: "CT"))
        let request = try #require(server.requests.first)
        #expect(request.path == "/dicom-web/studies")
        #expect(request.query["PatientID"] == "A+B&C=D E")
        #expect(request.query["StudyDate"] == "20240101-")
        #expect(request.query["ModalitiesInStudy"] == "CT")
        #expect(request.authorization == "Bearer tok-123")
        #expect(request.accept == "application/dicom+json")
    }

    @Test("a WADO-RS answer cut off before its closing boundary is an error and leaves no partial file")
    func cutOff() async throws {
        let part = "--b 1\r\nContent-Type: application/dicom\r\n\r\nDICM-ish\r\n"
        let server = try ScriptedServer([
            .init(
                status: 200,
                headers: ["Content-Type": "multipart/related; type=\"application/dicom\"; boundary=\"b 1\""],
                body: part + part + "--b 1\r\nContent-Type: application/dicom\r\n\r\nhalf a fi")
        ])
        let client = DICOMwebClient(baseURL: server.baseURL)
        let scratch = try ScratchDirectory()
        let error = await #expect(throws: StagingError.self) {
            try await client.retrieveSeries(study: "1.2", series: "3.4", into: scratch.appending("out"))
        }
        #expect(error?.message.hasPrefix("GET /dicom-web/studies/1.2/series/3.4: ") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("cut off") == true, "\(error?.message ?? "")")
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.appending("out").path).sorted()
        #expect(left == ["0001.dcm", "0002.dcm"])
        #expect(server.requests.first?.accept == "multipart/related; type=\"application/dicom\"")
    }
}

/// What a progress callback was told, in order.
final class ProgressLog: Sendable {
    private let lock = Mutex<[(Int, Int64)]>([])
    func record(_ count: Int, _ bytes: Int64) { lock.withLock { $0.append((count, bytes)) } }
    var steps: [(Int, Int64)] { lock.withLock { $0 } }
}

@Suite("Reading multipart bodies")
struct MultipartReaderTests {
    /// The parts of `body` read `chunk` bytes at a time: headers and bodies.
    func parts(_ body: [UInt8], boundary: String, chunk: Int) throws -> [([String: String], [UInt8])] {
        var reader = MultipartReader(boundary: boundary)
        var parts: [([String: String], [UInt8])] = []
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            try reader.feed(body[offset..<end]) { event in
                switch event {
                case .begin(let index, let headers):
                    #expect(index == parts.count + 1)
                    parts.append((headers, []))
                case .bytes(let bytes): parts[parts.count - 1].1 += bytes
                case .end: break
                }
            }
            offset = end
        }
        try reader.finish()
        return parts
    }

    /// Characters a boundary may have that need quotes in a Content-Type: `:`, `=`, space, parentheses, `?`.
    static let boundary = "b0und'ary:with=odd (chars)?"
    /// A preamble, a part whose body holds CRLF, `--` and most of the delimiter, a part without headers, an empty
    /// part, transport padding after a delimiter, the closing delimiter, an epilogue.
    static let body = Array(
        ("This is a preamble.\r\n--not the boundary\r\n"
            + "--\(boundary)\r\n"
            + "Content-Type: application/dicom\r\nContent-Length: 31\r\n\r\n"
            + "first\r\n--b0und'ary:with=odd x\r\n"
            + "\r\n--\(boundary) \t\r\n"
            + "\r\n"
            + "second, no headers"
            + "\r\n--\(boundary)\r\n"
            + "content-type: application/dicom\r\n\r\n"
            + "\r\n--\(boundary)--\r\nAn epilogue with \r\n--\(boundary)\r\n in it.\r\n").utf8)

    @Test("parts split right whatever the chunk size, down to one byte (delimiters cut across chunks)")
    func chunkSizes() throws {
        for chunk in [1, 2, 3, 5, 7, 13, 64, 1 << 20] {
            let found = try parts(Self.body, boundary: Self.boundary, chunk: chunk)
            #expect(found.count == 3, "chunk \(chunk)")
            guard found.count == 3 else { continue }
            #expect(found[0].0 == ["content-type": "application/dicom", "content-length": "31"])
            #expect(String(decoding: found[0].1, as: UTF8.self) == "first\r\n--b0und'ary:with=odd x\r\n")
            #expect(found[1].0.isEmpty)
            #expect(String(decoding: found[1].1, as: UTF8.self) == "second, no headers")
            #expect(found[2].0 == ["content-type": "application/dicom"])
            #expect(found[2].1.isEmpty)
        }
    }

    @Test("the boundary comes from the Content-Type, quoted or not")
    func boundaryParameter() {
        #expect(
            MultipartReader.boundary(
                contentType: "multipart/related; type=\"application/dicom\"; boundary=\"b0und'ary:with=odd (chars)?\"")
                == Self.boundary)
        #expect(
            MultipartReader.boundary(contentType: "Multipart/Related;type=\"application/dicom\";Boundary=abc-123")
                == "abc-123")
        #expect(MultipartReader.boundary(contentType: "multipart/related; boundary=x; type=\"a;b\"") == "x")
        #expect(MultipartReader.boundary(contentType: "multipart/related; boundary=\"a\\\"b\"") == "a\"b")
        #expect(MultipartReader.boundary(contentType: "application/dicom; boundary=abc") == nil)
        #expect(MultipartReader.boundary(contentType: "multipart/related; type=\"application/dicom\"") == nil)
    }

    @Test("a body cut off before its closing delimiter, or with a bad delimiter line, is an error")
    func truncated() throws {
        let cut = Array(Self.body[..<(Self.body.count - 80)])
        #expect(throws: StagingError.self) { try parts(cut, boundary: Self.boundary, chunk: 4) }
        #expect(throws: StagingError.self) { try parts(Array("no delimiter at all".utf8), boundary: "x", chunk: 4) }
        let bad = Array("--x\r\nA: b\r\n\r\nbody\r\n--xy\r\n\r\n--x--".utf8)
        #expect(throws: StagingError.self) { try parts(bad, boundary: "x", chunk: 3) }
    }

    @Test("a body file splits into 0001.dcm, 0002.dcm, … with nothing else left; a wrong Content-Length is an error")
    func splitFile() throws {
        let scratch = try ScratchDirectory()
        let file = scratch.appending("body")
        try Data(Self.body).write(to: file)
        let out = scratch.appending("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let files = try MultipartFileSplitter(boundary: Self.boundary, chunkSize: 5).split(file, into: out)
        #expect(files.map(\.lastPathComponent) == ["0001.dcm", "0002.dcm", "0003.dcm"])
        #expect(try Data(contentsOf: files[1]) == Data("second, no headers".utf8))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() == [
                "0001.dcm", "0002.dcm", "0003.dcm",
            ])

        let lying = Array("--x\r\nContent-Length: 9\r\n\r\n12345678\r\n--x--\r\n".utf8)
        try Data(lying).write(to: file)
        let other = scratch.appending("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let error = #expect(throws: StagingError.self) {
            try MultipartFileSplitter(boundary: "x", chunkSize: 5).split(file, into: other)
        }
        #expect(error?.message.contains("Content-Length says 9") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: other.path).isEmpty)
    }
}
