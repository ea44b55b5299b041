import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A client of a DICOMweb server (PS3.18): QIDO-RS searches for studies and series, WADO-RS retrieval of a series
/// into one file per instance, streamed to disk.
///
/// Errors are `StagingError`s naming the method, the URL's path (never its query: query values are patient
/// identifiers), the HTTP status and the start of the answer; never the credentials. 429 and 5xx answers and failed
/// connections are tried three times in all, with growing pauses.
public final class DICOMwebClient: Sendable {
    public enum Auth: Sendable {
        case none
        /// Sent with every request (not only after a challenge).
        case basic(user: String, password: String)
        /// `Authorization: Bearer TOKEN` on every request.
        case bearer(token: String)
    }

    /// The service root, such as `http://pacs:8042/dicom-web`.
    public let baseURL: URL
    let auth: Auth
    let session: URLSession
    /// Tries per request for 429 and 5xx answers and failed connections.
    let attempts = 3
    /// The pause before the second try; it doubles for each further one.
    let firstRetryDelay: Double

    /// `requestTimeout`: how long (seconds) a connection may stay silent before the request fails.
    public convenience init(baseURL: URL, auth: Auth = .none, requestTimeout: Double = 60) {
        self.init(baseURL: baseURL, auth: auth, requestTimeout: requestTimeout, firstRetryDelay: 0.5)
    }

    init(baseURL: URL, auth: Auth, requestTimeout: Double, firstRetryDelay: Double) {
        self.baseURL = baseURL
        self.auth = auth
        self.firstRetryDelay = firstRetryDelay
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = requestTimeout
        configuration.urlCache = nil
        session = URLSession(configuration: configuration, delegate: ChallengeRefusal(), delegateQueue: nil)
    }

    deinit { session.finishTasksAndInvalidate() }

    // MARK: QIDO-RS

    /// The studies matching `query` (QIDO-RS `GET /studies`).
    public func searchStudies(_ query: StudyQuery) async throws -> [StudyMatch] {
        let parameters = try query.parameters() + [("includefield", "NumberOfStudyRelatedInstances")]
        let studies = try await search(["studies"], parameters).compactMap(\.study)
        guard let bodyPart = query.bodyPart else { return studies }
        // Body part is a series attribute: keep the studies with a series of that body part (and modality).
        var kept: [StudyMatch] = []
        for study in studies {
            let series = try await searchSeries(
                study: study.studyInstanceUID, modality: query.modality, bodyPart: bodyPart)
            if !series.isEmpty { kept.append(study) }
        }
        return kept
    }

    /// The series of study `study`, of the modality and body part given (QIDO-RS `GET /studies/{study}/series`).
    /// A study the server does not have is an error (not an empty list).
    public func searchSeries(study: String, modality: String? = nil, bodyPart: String? = nil) async throws
        -> [SeriesMatch]
    {
        try Self.checkUID(study)
        var parameters: [(String, String)] = []
        if let modality { parameters.append(("Modality", modality)) }
        if let bodyPart { parameters.append(("BodyPartExamined", bodyPart)) }
        parameters += [("includefield", "BodyPartExamined"), ("includefield", "NumberOfSeriesRelatedInstances")]
        let path = ["studies", study, "series"]
        let series = try await search(path, parameters).compactMap(\.series)
        if series.isEmpty {
            // Servers answer an unknown study's series search with an empty list (Orthanc does): ask for the study.
            if try await search(["studies"], [("StudyInstanceUID", study)]).isEmpty {
                throw StagingError(.server, "GET \(url(path).path): the server has no study \(study)")
            }
        }
        return series
    }

    /// GET of a QIDO-RS resource: the datasets of its DICOM JSON body (none for 204).
    func search(_ path: [String], _ parameters: [(String, String)]) async throws -> [DICOMJSON] {
        var request = URLRequest(url: url(path, parameters))
        request.setValue("application/dicom+json", forHTTPHeaderField: "Accept")
        let (body, response) = try await send(request, download: false, secrets: parameters.map(\.1))
        guard response.statusCode == 200 || response.statusCode == 204, case .data(let data) = body else {
            throw failure(request, response, body, secrets: parameters.map(\.1))
        }
        do {
            return try DICOMJSON.datasets(data)
        } catch let error as StagingError {
            throw StagingError(error.code, "GET \(request.url!.path): \(error.message)")
        }
    }

    // MARK: WADO-RS

    /// Retrieves every instance of series `series` of study `study` (WADO-RS `GET /studies/{study}/series/{series}`
    /// as `multipart/related; type="application/dicom"`) into `directory` (made if need be): `0001.dcm`, `0002.dcm`,
    /// … in the order the server sends them, each the instance's Part 10 file as the server stores it. The answer is
    /// downloaded to a temporary file and split from there 1 MiB at a time, so memory stays small whatever the
    /// series' size; each instance file is written under a hidden temporary name and renamed once complete (files of
    /// the same names already there are replaced). `progress` is told the instances and bytes written so far after
    /// each instance.
    public func retrieveSeries(
        study: String, series: String, into directory: URL, progress: (@Sendable (Int, Int64) -> Void)? = nil
    ) async throws -> [URL] {
        try Self.checkUID(study)
        try Self.checkUID(series)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StagingError(.usage, "\(directory.path): cannot make the directory")
        }
        var request = URLRequest(url: url(["studies", study, "series", series]))
        request.setValue("multipart/related; type=\"application/dicom\"", forHTTPHeaderField: "Accept")
        let (body, response) = try await send(request, download: true, secrets: [])
        guard case .file(let file) = body else { throw failure(request, response, body, secrets: []) }
        defer { try? FileManager.default.removeItem(at: file) }
        guard response.statusCode == 200 else { throw failure(request, response, body, secrets: []) }
        let contentType = response.value(forHTTPHeaderField: "Content-Type") ?? ""
        guard let boundary = MultipartReader.boundary(contentType: contentType) else {
            throw StagingError(
                .server,
                "GET \(request.url!.path): the server answered \(contentType.isEmpty ? "no Content-Type" : contentType)"
                    + ", not multipart/related with a boundary")
        }
        do {
            return try MultipartFileSplitter(boundary: boundary).split(file, into: directory, progress: progress)
        } catch let error as StagingError {
            throw StagingError(error.code, "GET \(request.url!.path): \(error.message)")
        }
    }

    // MARK: requests

    enum Body {
        case data(Data)
        case file(URL)
    }

    /// A DICOM UID: digits and dots, at most 64 characters (it goes into URL paths as it is).
    static func checkUID(_ uid: String) throws {
        guard !uid.isEmpty, uid.count <= 64, uid.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) else {
            throw StagingError(.usage, "\(uid.prefix(80)): not a DICOM UID (digits and dots)")
        }
    }

    /// The base URL with `path` added and the query `parameters`, percent-encoded but for unreserved characters
    /// (so that `+`, `&`, `=` in a value stay what they are).
    func url(_ path: [String], _ parameters: [(String, String)] = []) -> URL {
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += "/" + path.joined(separator: "/")
        if !parameters.isEmpty {
            let unreserved = CharacterSet(charactersIn: "-._~").union(
                CharacterSet(charactersIn: "a"..."z")
            ).union(CharacterSet(charactersIn: "A"..."Z")).union(CharacterSet(charactersIn: "0"..."9"))
            text +=
                "?"
                + parameters.map {
                    "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")"
                }.joined(separator: "&")
        }
        return URL(string: text)!
    }

    /// Sends `original` with the credentials, trying again after 429, 5xx and failed connections. 401 is an error
    /// here; other statuses are the caller's to judge.
    func send(_ original: URLRequest, download: Bool, secrets: [String]) async throws -> (Body, HTTPURLResponse) {
        var request = original
        switch auth {
        case .none: break
        case .basic(let user, let password):
            let encoded = Data("\(user):\(password)".utf8).base64EncodedString()
            request.setValue("Basic \(encoded)", forHTTPHeaderField: "Authorization")
        case .bearer(let token):
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let method = original.httpMethod ?? "GET"
        let path = original.url!.path
        var delay = firstRetryDelay
        for attempt in 1...attempts {
            let body: Body
            let answer: URLResponse
            do {
                if download {
                    let (file, response) = try await session.download(for: request)
                    (body, answer) = (.file(file), response)
                } else {
                    let (data, response) = try await session.data(for: request)
                    (body, answer) = (.data(data), response)
                }
            } catch let error as URLError where error.code == .cancelled || error.code == .userAuthenticationRequired {
                // Cancelled by the caller, or by ChallengeRefusal on a 401 with a challenge.
                if Task.isCancelled { throw CancellationError() }
                throw refused(method, path)
            } catch let error as URLError {
                // Never `error` itself: its description holds the whole URL, query and all.
                guard attempt < attempts else {
                    throw StagingError(
                        .server,
                        "\(method) \(path): no answer from \(original.url!.host ?? "the server")"
                            + " after \(attempts) tries (\(Self.describe(error.code)))")
                }
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay *= 2
                continue
            }
            guard let response = answer as? HTTPURLResponse else {
                throw StagingError(.server, "\(method) \(path): not an HTTP answer")
            }
            if response.statusCode == 401 {
                if case .file(let file) = body { try? FileManager.default.removeItem(at: file) }
                throw refused(method, path)
            }
            if response.statusCode == 429 || response.statusCode >= 500, attempt < attempts {
                if case .file(let file) = body { try? FileManager.default.removeItem(at: file) }
                let asked = response.value(forHTTPHeaderField: "Retry-After").flatMap(Double.init)
                try await Task.sleep(nanoseconds: UInt64(min(asked ?? delay, 30) * 1e9))
                delay *= 2
                continue
            }
            return (body, response)
        }
        fatalError("unreachable: the last try returns or throws")
    }

    func refused(_ method: String, _ path: String) -> StagingError {
        if case .none = auth {
            return StagingError(
                .usage, "\(method) \(path): the server asks for credentials (HTTP 401); none were given")
        }
        return StagingError(.usage, "\(method) \(path): the server refused the credentials given (HTTP 401)")
    }

    /// The error for an answer with an unexpected status: method, path, status, and the start of the body with
    /// `secrets` (the query's values) and the credentials blanked out.
    func failure(_ request: URLRequest, _ response: HTTPURLResponse, _ body: Body, secrets: [String]) -> StagingError {
        var bytes = Data()
        switch body {
        case .data(let data): bytes = data.prefix(600)
        case .file(let file):
            if let handle = try? FileHandle(forReadingFrom: file) {
                bytes = (try? handle.read(upToCount: 600)) ?? Data()
                try? handle.close()
            }
        }
        var text = String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        var hidden = secrets
        switch auth {
        case .none: break
        case .basic(let user, let password): hidden += [user, password]
        case .bearer(let token): hidden.append(token)
        }
        for secret in hidden where !secret.isEmpty { text = text.replacingOccurrences(of: secret, with: "…") }
        if text.count > 200 { text = String(text.prefix(200)) + "…" }
        let status = HTTPURLResponse.localizedString(forStatusCode: response.statusCode)
        return StagingError(
            .server,
            "\(request.httpMethod ?? "GET") \(request.url!.path): HTTP \(response.statusCode) \(status)"
                + (text.isEmpty ? "" : ": \(text)"))
    }

    static func describe(_ code: URLError.Code) -> String {
        switch code {
        case .timedOut: "timed out"
        case .cannotConnectToHost: "connection refused"
        case .cannotFindHost: "unknown host"
        case .networkConnectionLost: "connection lost"
        case .notConnectedToInternet: "no network"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate:
            "TLS handshake failed"
        default: "network error \(code.rawValue)"
        }
    }
}

/// Cancels every authentication challenge. FoundationNetworking raises one for a 401 that carries a challenge and,
/// without a delegate answering it (or with `.performDefaultHandling`), never finishes the request. The credentials
/// went with the request already, so a challenge means they were refused (or there were none): cancelling turns it
/// into an immediate `URLError.cancelled`, which the client reports as refused credentials.
final class ChallengeRefusal: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        completionHandler(.cancelAuthenticationChallenge, nil)
    }
}
