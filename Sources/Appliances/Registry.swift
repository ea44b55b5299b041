import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A client of the OCI distribution API (registry v2): pushes an OCI image layout's image (blobs first, each
/// skipped when the registry has it, uploaded from disk in one streamed PUT, or in chunks when the registry will
/// not take it whole; then the manifest) and reads manifests and blobs back. Basic credentials are sent when the
/// registry asks for them; bearer tokens are fetched from the realm a 401 names and kept per scope.
public final class RegistryClient: @unchecked Sendable {
    public struct Reference: Equatable, Sendable, CustomStringConvertible {
        public var registry: String
        public var repository: String
        public var tag: String

        /// `HOST[:PORT]/REPO[/…]:TAG` (the tag defaults to latest).
        public init(_ text: String) throws(RegistryError) {
            guard let slash = text.firstIndex(of: "/") else {
                throw RegistryError(
                    "\(text): give REGISTRY/REPOSITORY[:TAG], such as localhost:5000/study/bone-density:1.0")
            }
            registry = String(text[..<slash])
            var rest = String(text[text.index(after: slash)...])
            tag = "latest"
            if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
                tag = String(rest[rest.index(after: colon)...])
                rest = String(rest[..<colon])
            }
            repository = rest
            guard !repository.isEmpty, !tag.isEmpty,
                repository.allSatisfy({ $0.isLowercase || $0.isNumber || "._-/".contains($0) })
            else { throw RegistryError("\(text): the repository is lower-case letters, digits and ._-/") }
        }

        public var description: String { "\(registry)/\(repository):\(tag)" }
    }

    public struct RegistryError: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Where a push or pull is: blob `blob` of `blobs` (its digest and size), the bytes of it moved so far, and
    /// the bytes moved by the whole transfer (`bytesSent`) in `seconds`. Reported when a blob starts, after each
    /// chunk of a chunked upload, and when it ends (`state` says how).
    public struct TransferProgress: Sendable {
        public enum State: String, Sendable {
            case started, sending
            case uploaded, skipped, mounted, downloaded
            /// A pull found the blob in the layout already.
            case present
        }

        public var blob: Int
        public var blobs: Int
        public var digest: String
        public var blobSize: Int64
        public var blobBytes: Int64
        public var blobSeconds: Double
        public var state: State
        public var bytesSent: Int64
        public var seconds: Double
        public var finished: Bool { ![.started, .sending].contains(state) }
        public var rate: Double { seconds > 0 ? Double(bytesSent) / seconds : 0 }
        /// This blob's rate.
        public var blobRate: Double { blobSeconds > 0 ? Double(blobBytes) / blobSeconds : 0 }
    }

    public typealias PushProgress = TransferProgress

    /// What a push did, blob by blob.
    public struct PushReport: Equatable, Sendable {
        public var uploaded: [String] = []
        public var skipped: [String] = []
        /// Blobs the registry linked from another of its repositories (cross-repository mount), not uploaded.
        public var mounted: [String] = []
        /// What the tag names now: the image's manifest, or the index of a multi-platform image.
        public var manifest = ""
        /// The images pushed: one, or one per platform under an index.
        public var images: [Image] = []

        public struct Image: Equatable, Sendable {
            public var platform: Platform?
            public var digest: String
        }
    }

    let scheme: String
    let credentials: (user: String, password: String)?
    let session: URLSession
    /// Chunk size for PATCH uploads.
    public var chunkSize = 8 << 20
    /// Tries per request for 429 and 5xx answers and dropped connections.
    public var attempts = 4
    /// Whether to try one PUT of the whole blob first (else chunks straight away).
    public var monolithic = true
    /// Guards `tokenByScope` and `basicAllowed`.
    private let tokens = NSLock()
    private var tokenByScope: [String: String] = [:]
    private var basicAllowed = false

    /// `requestTimeout`: how long a connection may stay silent before the request fails (and is tried again). A
    /// connection the registry drops mid-upload shows up only this way: FoundationNetworking does not report it.
    public init(
        insecure: Bool = false, credentials: (user: String, password: String)? = nil, requestTimeout: Double = 30
    ) {
        scheme = insecure ? "http" : "https"
        self.credentials = credentials
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = requestTimeout
        session = URLSession(
            configuration: configuration, delegate: BasicChallengeAnswer(credentials: credentials), delegateQueue: nil)
    }

    // MARK: push

    /// Pushes the image `tag` of the OCI layout at `layout` to `reference`. A blob missing there is first asked
    /// for by mount from each repository of `mountFrom` on the same registry (one request, no bytes sent). When the
    /// layout holds the tag for several platforms, every image is pushed by its digest, then an OCI image index
    /// naming them (sorted by platform, canonical JSON: the same images give the same index) under the tag.
    public func push(
        layout: String, tag: String, to reference: Reference, mountFrom: [String] = [],
        progress: (@Sendable (TransferProgress) -> Void)? = nil
    ) async throws -> PushReport {
        let root = URL(fileURLWithPath: layout)
        guard let entries = OCILayout.entries(root) else {
            throw RegistryError("\(layout): not an OCI image layout (no index.json)")
        }
        let tagged = OCILayout.tagged(entries, tag: tag)
        guard !tagged.isEmpty else { throw RegistryError("\(layout): no image tagged \(tag)") }
        var images: [(platform: Platform?, descriptor: Descriptor, data: Data, blobs: [(String, Int64)])] = []
        for entry in tagged {
            guard let digest = entry["digest"] as? String,
                let data = FileManager.default.contents(atPath: blob(root, digest).path),
                let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let config = manifest["config"] as? [String: Any], let layers = manifest["layers"] as? [[String: Any]]
            else { throw RegistryError("\(layout): a manifest of \(tag) is missing or unreadable") }
            let blobs = ([config] + layers).compactMap { descriptor -> (String, Int64)? in
                guard let digest = descriptor["digest"] as? String else { return nil }
                return (digest, (descriptor["size"] as? NSNumber)?.int64Value ?? 0)
            }
            let mediaType = manifest["mediaType"] as? String ?? ApplianceBuilder.manifestMediaType
            images.append(
                (
                    OCILayout.platform(of: entry, in: root),
                    Descriptor(mediaType: mediaType, digest: digest, size: Int64(data.count)), data, blobs
                ))
        }
        if images.count > 1 {
            images.sort { ($0.platform?.description ?? "") < ($1.platform?.description ?? "") }
            let platforms = images.map { $0.platform?.description ?? "" }
            if let twice = platforms.first(where: { name in platforms.filter { $0 == name }.count > 1 }) {
                throw RegistryError(
                    "\(layout): \(tag) names several images \(twice.isEmpty ? "without a platform" : "for \(twice)")")
            }
        }
        try await authenticate(reference, scope: pushScope(reference))
        var report = PushReport()
        let started = Date()
        var sent: Int64 = 0
        var seen = Set<String>()
        let all = images.flatMap(\.blobs).filter { seen.insert($0.0).inserted }
        for (index, (digest, size)) in all.enumerated() {
            let file = blob(root, digest)
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw RegistryError("\(layout): blob \(digest) is missing")
            }
            let blobStarted = Date()
            let tell = { @Sendable (state: TransferProgress.State, bytes: Int64, total: Int64) in
                progress?(
                    TransferProgress(
                        blob: index + 1, blobs: all.count, digest: digest, blobSize: size, blobBytes: bytes,
                        blobSeconds: Date().timeIntervalSince(blobStarted), state: state, bytesSent: total,
                        seconds: Date().timeIntervalSince(started)))
            }
            tell(.started, 0, sent)
            let state: TransferProgress.State
            if try await hasBlob(reference, digest) {
                state = .skipped
            } else if try await mount(digest, into: reference, from: mountFrom) {
                state = .mounted
            } else {
                let before = sent
                try await upload(file, digest: digest, to: reference) { tell(.sending, $0, before + $0) }
                state = .uploaded
                sent += size
            }
            switch state {
            case .skipped: report.skipped.append(digest)
            case .mounted: report.mounted.append(digest)
            default: report.uploaded.append(digest)
            }
            tell(state, state == .uploaded ? size : 0, sent)
        }
        if images.count == 1, let image = images.first {
            try await putManifest(image.data, image.descriptor, to: reference, as: reference.tag)
            report.manifest = image.descriptor.digest
        } else {
            for image in images {
                try await putManifest(image.data, image.descriptor, to: reference, as: image.descriptor.digest)
            }
            let index = try ApplianceBuilder.imageIndex(images.map { ($0.descriptor, $0.platform) })
            try await putManifest(index.data, index.descriptor, to: reference, as: reference.tag)
            report.manifest = index.descriptor.digest
        }
        report.images = images.map { PushReport.Image(platform: $0.platform, digest: $0.descriptor.digest) }
        return report
    }

    /// PUTs a manifest or index under a tag or its digest; the registry must store it under `descriptor`'s digest.
    func putManifest(_ data: Data, _ descriptor: Descriptor, to reference: Reference, as name: String) async throws {
        var request = URLRequest(url: url(reference, "manifests/\(name)"))
        request.httpMethod = "PUT"
        request.setValue(descriptor.mediaType, forHTTPHeaderField: "Content-Type")
        let (_, response) = try await send(request, body: .data(data), scope: pushScope(reference))
        guard response.statusCode == 201 else {
            throw RegistryError(
                "\(reference): the registry refused the manifest \(descriptor.digest) (HTTP \(response.statusCode))")
        }
        if let answered = response.value(forHTTPHeaderField: "Docker-Content-Digest"), answered != descriptor.digest {
            throw RegistryError(
                "\(reference): the registry stored the manifest as \(answered), not \(descriptor.digest)")
        }
    }

    func hasBlob(_ reference: Reference, _ digest: String) async throws -> Bool {
        var request = URLRequest(url: url(reference, "blobs/\(digest)"))
        request.httpMethod = "HEAD"
        let (_, response) = try await send(request, body: nil, scope: pushScope(reference))
        return response.statusCode == 200
    }

    /// Cross-repository mount (POST …/blobs/uploads/?mount=DIGEST&from=REPO): 201 when the registry linked the
    /// blob. Any other answer (202 opens an upload session instead, which is left to expire) tries the next.
    func mount(_ digest: String, into reference: Reference, from repositories: [String]) async throws -> Bool {
        for repository in repositories where repository != reference.repository {
            var request = URLRequest(
                url: Self.appending(
                    Self.appending(url(reference, "blobs/uploads/"), "mount", digest), "from", repository))
            request.httpMethod = "POST"
            request.setValue("0", forHTTPHeaderField: "Content-Length")
            let scope = "\(pushScope(reference)) repository:\(repository):pull"
            let (_, response) = try await send(request, body: .data(Data()), scope: scope)
            if response.statusCode == 201 { return true }
        }
        return false
    }

    /// One streamed PUT of the whole file; chunked PATCHes when the registry does not take that. `sent` hears the
    /// bytes of the file the registry has taken after each chunk.
    func upload(
        _ file: URL, digest: String, to reference: Reference, sent: (@Sendable (Int64) -> Void)? = nil
    ) async throws {
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value ?? 0
        if monolithic {
            // An upload cut off or refused with 5xx leaves its session in an unknown state: each try starts anew.
            var delay = 0.5
            for attempt in 1...attempts {
                let location = try await startUpload(reference)
                var put = URLRequest(url: Self.appending(location, "digest", digest))
                put.httpMethod = "PUT"
                put.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
                put.setValue(String(size), forHTTPHeaderField: "Content-Length")
                let status: Int
                do {
                    status = try await send(put, body: .file(file), scope: pushScope(reference), tries: 1).1.statusCode
                } catch let error as RegistryError where error.description.contains("asks for credentials") {
                    throw error
                } catch {
                    status = 0
                }
                if status == 201 { return }
                if [400, 405, 413, 416].contains(status) { break }  // not taken whole: chunks
                guard status == 0 || status == 429 || status >= 500 else {
                    throw RegistryError("\(reference): upload of \(digest) refused (HTTP \(status))")
                }
                guard attempt < attempts else { break }
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay *= 2
            }
        }
        // Chunked: PATCH each range, then PUT with the digest and no body.
        var location = try await startUpload(reference)
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var offset: Int64 = 0
        while offset < size {
            let chunk = try handle.read(upToCount: chunkSize) ?? Data()
            if chunk.isEmpty { break }
            var patch = URLRequest(url: location)
            patch.httpMethod = "PATCH"
            patch.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
            patch.setValue("\(offset)-\(offset + Int64(chunk.count) - 1)", forHTTPHeaderField: "Content-Range")
            patch.setValue(String(chunk.count), forHTTPHeaderField: "Content-Length")
            let (_, answer) = try await send(patch, body: .data(chunk), scope: pushScope(reference))
            guard answer.statusCode == 202, let next = answer.value(forHTTPHeaderField: "Location") else {
                throw RegistryError("\(reference): chunk at \(offset) of \(digest) refused (HTTP \(answer.statusCode))")
            }
            location = try resolve(next, against: location)
            offset += Int64(chunk.count)
            sent?(offset)
        }
        var close = URLRequest(url: Self.appending(location, "digest", digest))
        close.httpMethod = "PUT"
        close.setValue("0", forHTTPHeaderField: "Content-Length")
        let (_, closed) = try await send(close, body: .data(Data()), scope: pushScope(reference))
        guard closed.statusCode == 201 else {
            throw RegistryError("\(reference): completing the upload of \(digest) failed (HTTP \(closed.statusCode))")
        }
    }

    func startUpload(_ reference: Reference) async throws -> URL {
        var request = URLRequest(url: url(reference, "blobs/uploads/"))
        request.httpMethod = "POST"
        request.setValue("0", forHTTPHeaderField: "Content-Length")
        let (_, response) = try await send(request, body: .data(Data()), scope: pushScope(reference))
        guard response.statusCode == 202, let location = response.value(forHTTPHeaderField: "Location") else {
            throw RegistryError("\(reference): the registry did not start an upload (HTTP \(response.statusCode))")
        }
        return try resolve(location, against: request.url!)
    }

    // MARK: pull

    /// The manifest of `reference` (its bytes, checked against the digest the registry names).
    public func manifest(_ reference: Reference) async throws -> Data {
        try await authenticate(reference, scope: pullScope(reference))
        var request = URLRequest(url: url(reference, "manifests/\(reference.tag)"))
        request.setValue(
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            forHTTPHeaderField: "Accept")
        let (data, response) = try await send(request, body: nil, scope: pullScope(reference))
        guard response.statusCode == 200 else {
            throw RegistryError("\(reference): no manifest (HTTP \(response.statusCode))")
        }
        if let digest = response.value(forHTTPHeaderField: "Docker-Content-Digest"),
            SHA256Stream.digest(data) != digest
        {
            throw RegistryError("\(reference): the manifest does not match its digest \(digest)")
        }
        return data
    }

    /// Pulls `reference` into an OCI image layout at `layout` (created if missing), tagged `tag` there: the manifest
    /// (for an index or a Docker manifest list, the entry of `platform`), then config and layers, each downloaded
    /// to disk and checked against its digest before it joins the layout. Blobs the layout holds are not fetched.
    /// The layout's entry of the same tag and platform is replaced; others (the tag for other platforms) stay.
    public func pull(
        _ reference: Reference, into layout: String, tag: String,
        platform: Platform = Platform(os: "linux", architecture: "amd64"),
        progress: (@Sendable (TransferProgress) -> Void)? = nil
    ) async throws -> String {
        let root = URL(fileURLWithPath: layout)
        let blobs = root.appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try await authenticate(reference, scope: pullScope(reference))
        var (data, mediaType) = try await fetchManifest(reference, reference.tag)
        if mediaType.contains("index") || mediaType.contains("manifest.list") {
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            let entries = object?["manifests"] as? [[String: Any]] ?? []
            guard
                let entry = entries.first(where: { Platform(json: $0["platform"]).map(platform.matches) ?? false }),
                let digest = entry["digest"] as? String
            else {
                let offered = entries.compactMap { Platform(json: $0["platform"])?.description }
                throw RegistryError(
                    "\(reference): no image for \(platform) (it has \(offered.joined(separator: ", ")))")
            }
            (data, mediaType) = try await fetchManifest(reference, digest)
        }
        guard let manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let config = manifest["config"] as? [String: Any], let layers = manifest["layers"] as? [[String: Any]]
        else { throw RegistryError("\(reference): the manifest has no config or layers") }
        let started = Date()
        var received: Int64 = 0
        let all = [config] + layers
        for (index, descriptor) in all.enumerated() {
            guard let digest = descriptor["digest"] as? String, digest.hasPrefix("sha256:") else { continue }
            let size = (descriptor["size"] as? NSNumber)?.int64Value ?? 0
            let blobStarted = Date()
            let tell = { (state: TransferProgress.State) in
                progress?(
                    TransferProgress(
                        blob: index + 1, blobs: all.count, digest: digest, blobSize: size,
                        blobBytes: state == .downloaded ? size : 0, blobSeconds: Date().timeIntervalSince(blobStarted),
                        state: state, bytesSent: received, seconds: Date().timeIntervalSince(started)))
            }
            let target = blobs.appendingPathComponent(String(digest.dropFirst(7)))
            if FileManager.default.fileExists(atPath: target.path) {
                tell(.present)
                continue
            }
            tell(.started)
            let request = URLRequest(url: url(reference, "blobs/\(digest)"))
            var authorised = request
            authorize(&authorised, scope: pullScope(reference))
            let (file, response) = try await session.download(for: authorised)
            defer { try? FileManager.default.removeItem(at: file) }
            guard (response as? HTTPURLResponse)?.statusCode == 200 else {
                throw RegistryError(
                    "\(reference): blob \(digest) (HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0))")
            }
            try BaseImage.copyChecked(file, to: target, digest: digest, what: reference.description)
            received += size
            tell(.downloaded)
        }
        let digest = SHA256Stream.digest(data)
        try data.write(to: blobs.appendingPathComponent(String(digest.dropFirst(7))), options: .atomic)
        // index.json: the entry of this tag and the image's platform (its config's) replaces an older one.
        let configDigest = config["digest"] as? String ?? ""
        let found = OCILayout.json(OCILayout.blob(root, configDigest)).flatMap { Platform(json: $0) } ?? platform
        try OCILayout.record(
            Descriptor(mediaType: mediaType, digest: digest, size: Int64(data.count)), platform: found, tag: tag,
            in: root)
        return digest
    }

    /// The repository's tags (GET /v2/REPO/tags/list), sorted.
    public func tags(_ reference: Reference) async throws -> [String] {
        try await authenticate(reference, scope: pullScope(reference))
        let (data, response) = try await send(
            URLRequest(url: url(reference, "tags/list")), body: nil, scope: pullScope(reference))
        guard response.statusCode == 200,
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw RegistryError("\(reference.registry)/\(reference.repository): no tags (HTTP \(response.statusCode))")
        }
        return ((object["tags"] as? [String]) ?? []).sorted()
    }

    /// A manifest or index by tag or digest, every type accepted; its bytes (checked) and media type.
    func fetchManifest(_ reference: Reference, _ tagOrDigest: String) async throws -> (Data, String) {
        var request = URLRequest(url: url(reference, "manifests/\(tagOrDigest)"))
        request.setValue(
            [
                "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
            ].joined(separator: ", "), forHTTPHeaderField: "Accept")
        let (data, response) = try await send(request, body: nil, scope: pullScope(reference))
        guard response.statusCode == 200 else {
            throw RegistryError("\(reference): no manifest \(tagOrDigest) (HTTP \(response.statusCode))")
        }
        let digest = SHA256Stream.digest(data)
        if let named = response.value(forHTTPHeaderField: "Docker-Content-Digest"), named != digest {
            throw RegistryError("\(reference): the manifest does not match its digest \(named)")
        }
        if tagOrDigest.hasPrefix("sha256:") && tagOrDigest != digest {
            throw RegistryError("\(reference): the manifest does not match its digest \(tagOrDigest)")
        }
        let type =
            response.value(forHTTPHeaderField: "Content-Type")?.split(separator: ";").first.map(String.init)
            ?? ((try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["mediaType"] as? String ?? "")
        return (data, type)
    }

    /// Asks `/v2/` first and answers its challenge, so that later requests (HEAD among them, whose 401 answers
    /// FoundationNetworking does not finish reading) carry credentials from the start.
    func authenticate(_ reference: Reference, scope: String) async throws {
        let ping = URLRequest(url: URL(string: "\(scheme)://\(reference.registry)/v2/")!)
        _ = try await send(ping, body: nil, scope: scope)
    }

    // MARK: requests

    enum Body {
        case data(Data)
        case file(URL)
    }

    func pushScope(_ reference: Reference) -> String { "repository:\(reference.repository):pull,push" }
    func pullScope(_ reference: Reference) -> String { "repository:\(reference.repository):pull" }

    func url(_ reference: Reference, _ path: String) -> URL {
        URL(string: "\(scheme)://\(reference.registry)/v2/\(reference.repository)/\(path)")!
    }

    func blob(_ root: URL, _ digest: String) -> URL { OCILayout.blob(root, digest) }

    /// A Location header may be relative, and keeps its query (the upload's state), to which `digest` is added.
    func resolve(_ location: String, against base: URL) throws -> URL {
        guard let url = URL(string: location, relativeTo: base)?.absoluteURL else {
            throw RegistryError("the registry answered with an unusable Location: \(location)")
        }
        return url
    }

    static func appending(_ url: URL, _ name: String, _ value: String) -> URL {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: true)!
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: name, value: value)]
        // ':' in a digest stays as it is; '+' would not survive some servers' decoding.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.url!
    }

    /// Sends with authentication (answering a 401's challenge once) and retries 429, 5xx and dropped connections.
    func send(_ original: URLRequest, body: Body?, scope: String, tries: Int? = nil) async throws -> (
        Data, HTTPURLResponse
    ) {
        var delay = 0.5
        var lastError: (any Error)?
        let attempts = tries ?? self.attempts
        for attempt in 1...attempts {
            var request = original
            authorize(&request, scope: scope)
            do {
                var (data, response) = try await perform(request, body: body)
                if response.statusCode == 401,
                    let challenge = response.value(forHTTPHeaderField: "WWW-Authenticate")
                {
                    try await answer(challenge, scope: scope)
                    request = original
                    authorize(&request, scope: scope)
                    (data, response) = try await perform(request, body: body)
                    if response.statusCode == 401 {
                        throw RegistryError("\(original.url?.host ?? "the registry"): credentials refused (HTTP 401)")
                    }
                }
                if response.statusCode == 429 || response.statusCode >= 500, attempt < attempts {
                    try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                    delay *= 2
                    continue
                }
                return (data, response)
            } catch let error as RegistryError {
                throw error
            } catch let error as URLError where error.code == .cancelled || error.code == .userAuthenticationRequired {
                throw RegistryError(
                    "\(original.url?.host ?? "the registry") asks for credentials"
                        + (credentials == nil ? " (give --user and --password-file)" : " and refused the ones given"))
            } catch {
                lastError = error
                guard attempt < attempts else { break }
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay *= 2
            }
        }
        throw RegistryError(
            "\(original.httpMethod ?? "GET") \(original.url?.path ?? ""): \(lastError.map { "\($0)" } ?? "failed")")
    }

    func perform(_ request: URLRequest, body: Body?) async throws -> (Data, HTTPURLResponse) {
        let (data, response): (Data, URLResponse)
        switch body {
        case .file(let file): (data, response) = try await session.upload(for: request, fromFile: file)
        case .data(let bytes): (data, response) = try await session.upload(for: request, from: bytes)
        case nil: (data, response) = try await session.data(for: request)
        }
        guard let http = response as? HTTPURLResponse else { throw RegistryError("not an HTTP answer") }
        return (data, http)
    }

    func authorize(_ request: inout URLRequest, scope: String) {
        let (token, basic) = tokens.withLock { (tokenByScope[scope], basicAllowed) }
        if let token {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        } else if let credentials, basic {
            let encoded = Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
            request.setValue("Basic \(encoded)", forHTTPHeaderField: "Authorization")
        }
    }

    /// Basic: send the credentials from now on. Bearer: fetch a token for the scope from the realm.
    func answer(_ challenge: String, scope: String) async throws {
        let lower = challenge.lowercased()
        if lower.hasPrefix("basic") {
            guard credentials != nil else {
                throw RegistryError("the registry asks for credentials (basic); give --user and a password")
            }
            tokens.withLock { basicAllowed = true }
            return
        }
        guard lower.hasPrefix("bearer") else { throw RegistryError("unknown authentication scheme: \(challenge)") }
        let parameters = Self.challengeParameters(String(challenge.dropFirst(6)))
        guard let realm = parameters["realm"], var components = URLComponents(string: realm) else {
            throw RegistryError("bearer challenge without a realm: \(challenge)")
        }
        var query = components.queryItems ?? []
        if let service = parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: parameters["scope"] ?? scope))
        components.queryItems = query
        var request = URLRequest(url: components.url!)
        if let credentials {
            let encoded = Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
            request.setValue("Basic \(encoded)", forHTTPHeaderField: "Authorization")
        }
        let (data, response) = try await perform(request, body: nil)
        guard response.statusCode == 200,
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let token = object["token"] as? String ?? object["access_token"] as? String
        else { throw RegistryError("the token service \(realm) refused (HTTP \(response.statusCode))") }
        tokens.withLock { tokenByScope[scope] = token }
    }

    /// `realm="https://auth",service="registry",scope="repository:x:pull"` → its parameters.
    static func challengeParameters(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,"))
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let close = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<close])
                rest = close < rest.endIndex ? rest[rest.index(after: close)...] : ""
            } else {
                let comma = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<comma])
                rest = rest[comma...]
            }
            result[key.lowercased()] = value
        }
        return result
    }
}

/// Answers FoundationNetworking's authentication challenges (it raises one for a 401 with a Basic challenge, and
/// waits for ever without a delegate): with the credentials when there are some, else by giving up, which the
/// client turns into "the registry asks for credentials".
final class BasicChallengeAnswer: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    let credentials: (user: String, password: String)?

    init(credentials: (user: String, password: String)?) { self.credentials = credentials }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        guard let credentials, challenge.previousFailureCount == 0 else {
            completionHandler(.cancelAuthenticationChallenge, nil)
            return
        }
        completionHandler(
            .useCredential, URLCredential(user: credentials.user, password: credentials.password, persistence: .none))
    }
}
