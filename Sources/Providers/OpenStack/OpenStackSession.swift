import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A Keystone token with what came with it: the project and the service catalog.
struct KeystoneToken: Sendable {
    var value: String
    var expires: Date
    var issued: Date
    var projectID: String
    /// service type → endpoints
    var catalog: [String: [Endpoint]]

    struct Endpoint: Sendable {
        var interface: String
        var region: String
        var url: String
    }
}

/// The OpenStack services deployctl calls, with the catalog types they go by.
enum OpenStackService: String, Sendable {
    case compute, network, volume, image

    var catalogTypes: [String] {
        switch self {
        case .compute: return ["compute"]
        case .network: return ["network"]
        case .volume: return ["block-storage", "volumev3", "volume"]
        case .image: return ["image"]
        }
    }

    var displayName: String {
        switch self {
        case .compute: return "Nova"
        case .network: return "Neutron"
        case .volume: return "Cinder"
        case .image: return "Glance"
        }
    }
}

/// An answer from a service: status, headers and body.
struct OpenStackResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: JSON

    func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Authenticates with Keystone, keeps the token (refreshed before it expires) and calls services from its catalog:
/// retries what is worth retrying (429, 5xx, 409 conflicts of a busy resource, a dropped connection) with backoff,
/// re-authenticates once on 401, and turns the rest into errors that say what OpenStack said — never a token,
/// password or secret.
final class OpenStackSession: Sendable {
    let provider: String
    let credentials: OpenStackCredentials
    let session: URLSession
    let attempts: Int
    let baseDelay: Double
    private let state = TokenState()
    private let microversions = MicroversionCache()

    init(provider: String, credentials: OpenStackCredentials, attempts: Int = 6, baseDelay: Double = 0.5) {
        self.provider = provider
        self.credentials = credentials
        self.attempts = attempts
        self.baseDelay = baseDelay
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        configuration.httpCookieAcceptPolicy = .never
        session = URLSession(configuration: configuration)
    }

    deinit { session.finishTasksAndInvalidate() }

    func fail(_ code: String, _ message: String) -> ProviderError { ProviderError(code, provider: provider, message) }

    /// DEPLOYCTL_OPENSTACK_TRACE=1 prints each call's method, URL and status (never a header or body) on stderr.
    static let trace = ProcessInfo.processInfo.environment["DEPLOYCTL_OPENSTACK_TRACE"] == "1"

    // MARK: Tokens

    /// The current token, fetched anew when there is none or it expires within the margin (a tenth of its life,
    /// at most five minutes).
    /// Callers that need a new token at the same time (nodes made in parallel) share one authentication.
    func token(forceNew: Bool = false) async throws(ProviderError) -> KeystoneToken {
        let current = await state.current()
        if !forceNew, let current, current.usable { return current }
        do {
            return try await state.renew(replacing: forceNew ? current?.value : nil) { [self] in
                try await self.authenticate()
            }
        } catch let error as ProviderError {
            throw error
        } catch {
            throw fail("openstack-auth", "authentication was interrupted (\(error))")
        }
    }

    /// How many times this session has authenticated (for tests).
    func authentications() async -> Int { await state.authentications }

    private func authenticate() async throws(ProviderError) -> KeystoneToken {
        let identity: JSON
        var scope = JSON.null
        switch credentials.method {
        case .password(let user, let userDomain, let password, let project, let projectID, let projectDomain):
            identity = [
                "methods": ["password"],
                "password": [
                    "user": [
                        "name": .string(user), "domain": Self.domain(userDomain), "password": .string(password),
                    ]
                ],
            ]
            if let projectID {
                scope = ["project": ["id": .string(projectID)]]
            } else if let project {
                scope = ["project": ["name": .string(project), "domain": Self.domain(projectDomain)]]
            }
        case .applicationCredential(let id, let name, let user, let userDomain, let secret):
            var credential: [String: JSON] = ["secret": .string(secret)]
            if let id {
                credential["id"] = .string(id)
            } else {
                credential["name"] = name.map(JSON.string) ?? nil
                credential["user"] = ["name": .string(user ?? ""), "domain": Self.domain(userDomain)]
            }
            identity = ["methods": ["application_credential"], "application_credential": .object(credential)]
        }
        var auth: [String: JSON] = ["identity": identity]
        if !scope.isNull { auth["scope"] = scope }
        guard let url = URL(string: credentials.identityURL + "/auth/tokens") else {
            throw fail("openstack-credentials", "auth_url '\(credentials.authURL)' is not a URL")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = JSON.object(["auth": .object(auth)]).data
        let response = try await send(request, what: "Keystone at \(credentials.identityURL)")
        guard response.status == 201 || response.status == 200 else {
            let said = Self.message(response.body) ?? "HTTP \(response.status)"
            if response.status == 401 {
                throw fail("openstack-auth", "Keystone refused \(credentials): \(said)")
            }
            throw fail("openstack-auth", "Keystone at \(credentials.identityURL) answered \(response.status): \(said)")
        }
        let body = response.body["token"]
        guard let value = response.header("X-Subject-Token"), let expires = Self.date(body["expires_at"].string)
        else {
            throw fail("openstack-auth", "Keystone's answer has no token (is \(credentials.identityURL) Keystone v3?)")
        }
        guard let projectID = body["project"]["id"].string else {
            throw fail(
                "openstack-auth", "the token Keystone gave for \(credentials) is not scoped to a project; name one")
        }
        var catalog: [String: [KeystoneToken.Endpoint]] = [:]
        for service in body["catalog"].array {
            guard let type = service["type"].string else { continue }
            catalog[type, default: []] += service["endpoints"].array.compactMap { endpoint in
                guard let url = endpoint["url"].string, let interface = endpoint["interface"].string else { return nil }
                return .init(
                    interface: interface, region: endpoint["region_id"].string ?? endpoint["region"].string ?? "",
                    url: url)
            }
        }
        return KeystoneToken(
            value: value, expires: expires, issued: Self.date(body["issued_at"].string) ?? Date(),
            projectID: projectID, catalog: catalog)
    }

    /// A domain reference: `id:X` (from `*_domain_id`) by id, anything else by name.
    static func domain(_ reference: String) -> JSON {
        reference.hasPrefix("id:") ? ["id": .string(String(reference.dropFirst(3)))] : ["name": .string(reference)]
    }

    static func date(_ text: String?) -> Date? {
        guard let text else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// The service's endpoint for the configured region and interface.
    func endpoint(_ service: OpenStackService, token: KeystoneToken) throws(ProviderError) -> String {
        let all = service.catalogTypes.flatMap { token.catalog[$0] ?? [] }
        guard !all.isEmpty else {
            throw fail(
                "openstack-catalog",
                "the service catalog has no \(service.displayName) (\(service.catalogTypes.joined(separator: "/")))")
        }
        let inRegion = credentials.region.map { region in all.filter { $0.region == region } } ?? all
        guard !inRegion.isEmpty else {
            let regions = Set(all.map(\.region)).sorted().joined(separator: ", ")
            throw fail(
                "openstack-catalog",
                "\(service.displayName) has no endpoint in region '\(credentials.region ?? "")'; it has: \(regions)")
        }
        guard let chosen = inRegion.first(where: { $0.interface == credentials.interface }) else {
            throw fail(
                "openstack-catalog",
                "\(service.displayName) has no \(credentials.interface) endpoint"
                    + (credentials.region.map { " in region \($0)" } ?? ""))
        }
        var url = chosen.url
        while url.hasSuffix("/") { url.removeLast() }
        switch service {
        case .network where !url.hasSuffix("/v2.0"): url += "/v2.0"
        case .image where !url.hasSuffix("/v2"): url += "/v2"
        case .compute where !url.contains("/v2"): url += "/v2.1"
        default: break
        }
        return url
    }

    // MARK: Calls

    /// Every item of a list, page after page: Nova, Cinder and Neutron link the next page in `KEY_links` (rel
    /// "next"), Glance in `next`. Nova and Cinder give at most 1000 items a page by default and Glance 25, so a
    /// project with more servers, volumes or images than that is read whole. A link off the service's endpoint is
    /// not followed.
    func list(
        _ service: OpenStackService, _ path: String, key: String, what: String
    ) async throws(ProviderError) -> [JSON] {
        var items: [JSON] = []
        var next: String? = path
        var seen: Set<String> = []
        while let current = next, seen.insert(current).inserted {
            let body = try await call(service, "GET", current, what: what).body
            let page = body[key].array
            items += page
            guard !page.isEmpty else { break }
            let link =
                body["\(key)_links"].array.first { $0["rel"].string == "next" }?["href"].string ?? body["next"].string
            next = nil
            if let link { next = try await relative(link, service: service) }
        }
        return items
    }

    /// A next-page link as a path under the service's endpoint (the token only ever goes to the endpoint).
    func relative(_ href: String, service: OpenStackService) async throws(ProviderError) -> String {
        let base = try endpoint(service, token: try await token())
        guard let path = Self.relativePath(href, base: base) else {
            throw fail("openstack-request", "\(service.displayName) linked a next page off its endpoint: \(href)")
        }
        return path
    }

    /// `href` as a path under `base`: an absolute URL that starts with it; else the link's path read after the
    /// longest tail of the endpoint's path it starts with — Glance's `/v2/images?marker=…`, or a service behind a
    /// proxy that links `http://controller:8774/v2.1/servers/detail?…` for the endpoint `https://cloud/compute/v2.1`.
    static func relativePath(_ href: String, base: String) -> String? {
        if href.hasPrefix(base) { return String(href.dropFirst(base.count)) }
        guard let link = URLComponents(string: href), let endpoint = URLComponents(string: base) else { return nil }
        let basePath = endpoint.path.split(separator: "/")
        let linkPath = link.path.split(separator: "/")
        for start in basePath.indices {
            let tail = basePath[start...]
            guard linkPath.starts(with: tail) else { continue }
            let rest = linkPath.dropFirst(tail.count).joined(separator: "/")
            return "/" + rest + (link.percentEncodedQuery.map { "?" + $0 } ?? "")
        }
        return nil
    }

    /// Calls a service. `expect` are the statuses that are answers (404 among them where absence is an answer);
    /// anything else becomes an error naming `what`. A POST is not idempotent: it is tried again only after a 429
    /// (refused before it was acted on); after a dropped connection, a 5xx or a 409 the caller must look for what
    /// the first try may have made before trying again (`createCompute` and `createVolume` do).
    func call(
        _ service: OpenStackService, _ method: String, _ path: String, body: JSON? = nil,
        expect: Set<Int> = [200, 201, 202, 204], what: String, headers: [String: String] = [:]
    ) async throws(ProviderError) -> OpenStackResponse {
        var token = try await self.token()
        var reauthenticated = false
        var attempt = 1
        while true {
            let base = try endpoint(service, token: token)
            guard let url = URL(string: base + path) else { throw fail("openstack-request", "bad path \(path)") }
            var request = URLRequest(url: url)
            request.httpMethod = method
            request.setValue(token.value, forHTTPHeaderField: "X-Auth-Token")
            request.setValue("application/json", forHTTPHeaderField: "Accept")
            if let version = await microversion(service, token: token) {
                request.setValue(version, forHTTPHeaderField: "OpenStack-API-Version")
            }
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            if let body {
                request.setValue(
                    headers["Content-Type"] ?? "application/json", forHTTPHeaderField: "Content-Type")
                request.httpBody = body.data
            }
            let response: OpenStackResponse
            do {
                response = try await send(request, what: "\(service.displayName) at \(base)")
            } catch  where attempt < attempts && error.code == "transient" && method != "POST" {
                try await pause(attempt: attempt, retryAfter: nil)
                attempt += 1
                continue
            }
            if Self.trace {
                FileHandle.standardError.write(Data("openstack: \(method) \(base)\(path) -> \(response.status)\n".utf8))
            }
            if expect.contains(response.status) { return response }
            if response.status == 401 && !reauthenticated {
                reauthenticated = true
                token = try await self.token(forceNew: true)
                continue
            }
            if let quota = Self.quotaMessage(service, response) {
                throw fail("quota", "\(what): \(quota)")
            }
            let retryable =
                response.status == 429 || (method != "POST" && (response.status >= 500 || response.status == 409))
            if retryable && attempt < attempts {
                try await pause(attempt: attempt, retryAfter: response.header("Retry-After").flatMap(Double.init))
                attempt += 1
                continue
            }
            let said = Self.message(response.body) ?? "no explanation"
            throw fail(
                response.status == 404 ? "not-found" : "openstack-\(response.status)",
                "\(what): \(service.displayName) answered \(response.status): \(said)"
                    + (retryable ? " (after \(attempts) tries)" : ""))
        }
    }

    /// Uploads a file as a request body, streamed from disk (Glance image data).
    func upload(
        _ service: OpenStackService, _ method: String, _ path: String, file: URL, contentType: String, what: String
    ) async throws(ProviderError) -> OpenStackResponse {
        var attempt = 1
        while true {
            let token = try await self.token()
            let base = try endpoint(service, token: token)
            guard let url = URL(string: base + path) else { throw fail("openstack-request", "bad path \(path)") }
            var request = URLRequest(url: url)
            request.httpMethod = method
            request.setValue(token.value, forHTTPHeaderField: "X-Auth-Token")
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
            let response: OpenStackResponse
            do {
                let (data, answer) = try await session.upload(for: request, fromFile: file)
                let http = answer as? HTTPURLResponse
                response = OpenStackResponse(
                    status: http?.statusCode ?? 0,
                    headers: (http?.allHeaderFields as? [String: String]) ?? [:], body: JSON(data: data))
            } catch {
                guard attempt < attempts else {
                    throw fail(
                        "transient", "\(what): the upload to \(service.displayName) failed: \(Self.describe(error))")
                }
                try await pause(attempt: attempt, retryAfter: nil)
                attempt += 1
                continue
            }
            if [200, 201, 204].contains(response.status) { return response }
            if (response.status == 429 || response.status >= 500) && attempt < attempts {
                try await pause(attempt: attempt, retryAfter: nil)
                attempt += 1
                continue
            }
            if let quota = Self.quotaMessage(service, response) { throw fail("quota", "\(what): \(quota)") }
            throw fail(
                "openstack-\(response.status)",
                "\(what): \(service.displayName) answered \(response.status): \(Self.message(response.body) ?? "")")
        }
    }

    private func send(_ request: URLRequest, what: String) async throws(ProviderError) -> OpenStackResponse {
        do {
            let (data, answer) = try await session.data(for: request)
            guard let http = answer as? HTTPURLResponse else { throw fail("transient", "\(what) gave no HTTP answer") }
            var headers: [String: String] = [:]
            for (key, value) in http.allHeaderFields {
                headers["\(key)"] = "\(value)"
            }
            return OpenStackResponse(status: http.statusCode, headers: headers, body: JSON(data: data))
        } catch let error as ProviderError {
            throw error
        } catch {
            throw fail("transient", "\(what) could not be reached: \(Self.describe(error))")
        }
    }

    private func pause(attempt: Int, retryAfter: Double?) async throws(ProviderError) {
        let delay = min(retryAfter ?? baseDelay * pow(2, Double(attempt - 1)), 30)
        do { try await Task.sleep(for: .milliseconds(Int(delay * 1000))) } catch {
            throw fail("cancelled", "cancelled while waiting to retry")
        }
    }

    static func describe(_ error: any Error) -> String {
        let error = error as NSError
        if let url = error.userInfo[NSURLErrorFailingURLErrorKey] as? URL {
            return "\(error.localizedDescription) (\(url.absoluteString.split(separator: "?").first ?? ""))"
        }
        return error.localizedDescription
    }

    // MARK: Microversions

    /// The microversion header for a service: the newest both deployctl and the service know (Nova up to 2.79,
    /// Cinder up to 3.60), read once from the service's version document.
    private func microversion(_ service: OpenStackService, token: KeystoneToken) async -> String? {
        let wanted: (String, Int, Int)
        switch service {
        case .compute: wanted = ("compute", 2, 79)
        case .volume: wanted = ("volume", 3, 60)
        default: return nil
        }
        if let known = await microversions.get(service) { return known.map { "\(wanted.0) \($0)" } }
        guard var base = try? endpoint(service, token: token) else { return nil }
        // Cinder's endpoint ends in /v3/PROJECT; its version document is at /v3 (a `version`) or at the root (a
        // `versions` list). Nova's is at the endpoint (/v2.1).
        if service == .volume, let range = base.range(of: "/v3", options: .backwards) {
            base = String(base[..<range.upperBound])
        }
        guard let url = URL(string: base) else { return nil }
        var request = URLRequest(url: url)
        request.setValue(token.value, forHTTPHeaderField: "X-Auth-Token")
        // A failed lookup is not remembered: the next call asks again.
        guard let response = try? await send(request, what: service.displayName), response.status < 400 else {
            return nil
        }
        let documents = [response.body["version"]] + response.body["versions"].array
        var chosen: String?
        for document in documents {
            guard let max = document["version"].string, !max.isEmpty else { continue }
            let parts = max.split(separator: ".").compactMap { Int($0) }
            if parts.count == 2, parts[0] == wanted.1 {
                chosen = "\(wanted.1).\(Swift.min(parts[1], wanted.2))"
                break
            }
        }
        await microversions.set(service, chosen)
        return chosen.map { "\(wanted.0) \($0)" }
    }

    /// The negotiated minor version of a service (0 when none was negotiated).
    func minor(_ service: OpenStackService) async throws(ProviderError) -> Int {
        let token = try await self.token()
        guard let header = await microversion(service, token: token),
            let minor = header.split(separator: ".").last.flatMap({ Int($0) })
        else { return 0 }
        return minor
    }

    // MARK: Errors

    /// The message in a service's error body, whichever of the services' shapes it has.
    static func message(_ body: JSON) -> String? {
        if let text = body["NeutronError"]["message"].string { return text }
        if let text = body["error"]["message"].string { return text }
        if let text = body["message"].string { return text }
        for (_, value) in body.object {
            if let text = value["message"].string { return text }
        }
        if let errors = body["errors"].array.first, let text = errors["detail"].string ?? errors["title"].string {
            return text
        }
        return nil
    }

    /// A quota refusal, said plainly: which quota, and by how much the request is over.
    static func quotaMessage(_ service: OpenStackService, _ response: OpenStackResponse) -> String? {
        guard let said = message(response.body) else { return nil }
        let lower = said.lowercased()
        guard lower.contains("quota") || lower.contains("overquota") || lower.contains("limitexceeded") else {
            return nil
        }
        // Nova: "Quota exceeded for cores: Requested 8, but already used 4 of 8 cores"
        if let match = said.firstMatch(
            of: #/Quota exceeded for (\w+): Requested (\d+), but already used (\d+) of (\d+)/#),
            let requested = Int(match.output.2), let used = Int(match.output.3), let limit = Int(match.output.4)
        {
            return "the project's \(match.output.1) quota is exceeded: \(requested) requested, \(used) of \(limit) in "
                + "use, so \(requested - (limit - used)) over; free some or ask for a larger quota"
        }
        // Cinder: "... Requested 100G, quota is 1000G and 950G has been consumed."
        if let match = said.firstMatch(of: #/Requested (\d+)G, quota is (\d+)G and (\d+)G has been consumed/#),
            let requested = Int(match.output.1), let limit = Int(match.output.2), let used = Int(match.output.3)
        {
            return "the project's gigabytes quota is exceeded: \(requested) GB requested, \(used) of \(limit) GB in "
                + "use, so \(requested - (limit - used)) GB over"
        }
        return "\(service.displayName) refused it for quota: \(said)"
    }
}

/// The token, behind an actor so that concurrent callers share one.
private actor TokenState {
    var token: KeystoneToken?
    var inFlight: Task<KeystoneToken, any Error>?
    var authentications = 0

    func current() -> KeystoneToken? { token }

    /// A new token, fetched once however many callers ask at the same time. `replacing` is the token a caller saw
    /// refused (a 401): if another caller has replaced it meanwhile, the new one is the answer.
    func renew(
        replacing stale: String?, _ authenticate: @escaping @Sendable () async throws -> KeystoneToken
    ) async throws -> KeystoneToken {
        if let inFlight { return try await inFlight.value }
        if let token, token.usable, stale == nil || token.value != stale { return token }
        let task = Task { try await authenticate() }
        inFlight = task
        defer { inFlight = nil }
        let new = try await task.value
        token = new
        authentications += 1
        return new
    }
}

extension KeystoneToken {
    /// Not within the last tenth of its life (at most five minutes before it expires).
    var usable: Bool {
        expires.timeIntervalSinceNow > min(300, expires.timeIntervalSince(issued) / 10)
    }
}

private actor MicroversionCache {
    var known: [OpenStackService: String?] = [:]
    func get(_ service: OpenStackService) -> String?? { known[service] }
    func set(_ service: OpenStackService, _ value: String?) { known[service] = .some(value) }
}
