import Foundation
import Yams

/// An `openstack` entry of the providers file.
///
/// ```yaml
/// providers:
///   bimcv:
///     type: openstack
///     cloud: bimcv              # an entry of clouds.yaml (default: $OS_CLOUD, else the OS_* variables)
///     network: project-net      # the network nodes join (default: the project's only non-external one)
///     floating_network: public  # where floating IPs for public endpoints come from
///     image: debian-12          # when the template's os capability names none that Glance has
///     ssh_user: debian
/// ```
public struct OpenStackProviderConfig: Sendable, Equatable {
    public var name: String
    /// The clouds.yaml entry; nil reads $OS_CLOUD, and without it the OS_* variables.
    public var cloud: String?
    /// An explicit clouds.yaml (else $OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml,
    /// /etc/openstack/clouds.yaml).
    public var cloudsFile: String?
    public var region: String?
    public var interface: String?
    public var network: String?
    public var floatingNetwork: String?
    public var image: String?
    public var sshUser: String = "debian"
    public var sshPort: Int = 22
    /// Which address deployctl reaches nodes on: `public` (their floating IP when they have one) or `private` (from
    /// a bastion inside the project network).
    public var sshVia: String = "public"
    /// Where node keys and addresses are kept (DEPLOYCTL_HOME/openstack/NAME).
    public var keyDirectory: String
    public var bootTimeout: Duration = .seconds(600)
    public var volumeTimeout: Duration = .seconds(300)
    /// Attached volumes are formatted (when new and blank) and mounted at their location over SSH.
    public var mountVolumes: Bool = true

    public init(name: String, keyDirectory: String) {
        self.name = name
        self.keyDirectory = keyDirectory
    }
}

/// How to authenticate: a password for a user scoped to a project, or an application credential.
public enum OpenStackAuthMethod: Sendable, Equatable {
    case password(
        user: String, userDomain: String, password: String, project: String?, projectID: String?,
        projectDomain: String)
    case applicationCredential(id: String?, name: String?, user: String?, userDomain: String, secret: String)
}

/// Resolved credentials. Its description never shows a password or secret.
public struct OpenStackCredentials: Sendable, Equatable, CustomStringConvertible {
    public var authURL: String
    public var method: OpenStackAuthMethod
    public var region: String?
    public var interface: String

    public init(authURL: String, method: OpenStackAuthMethod, region: String? = nil, interface: String = "public") {
        self.authURL = authURL
        self.method = method
        self.region = region
        self.interface = interface
    }

    /// The identity v3 root: `…/v3` whether or not clouds.yaml wrote it.
    public var identityURL: String {
        var url = authURL
        while url.hasSuffix("/") { url.removeLast() }
        return url.hasSuffix("/v3") ? url : url + "/v3"
    }

    public var description: String {
        switch method {
        case .password(let user, let userDomain, _, let project, let projectID, _):
            return "user \(user)@\(userDomain), project \(project ?? projectID ?? "?") at \(authURL)"
        case .applicationCredential(let id, let name, _, _, _):
            return "application credential \(id ?? name ?? "?") at \(authURL)"
        }
    }

    /// From a clouds.yaml entry (`cloud`, else $OS_CLOUD) or, without one, the OS_* variables.
    public static func resolve(
        cloud: String?, cloudsFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        home: String = NSHomeDirectory(), workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws(ProviderError) -> OpenStackCredentials {
        let fail = { (message: String) in ProviderError("openstack-credentials", provider: "openstack", message) }
        if let name = cloud ?? environment["OS_CLOUD"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let candidates =
                [cloudsFile, environment["OS_CLIENT_CONFIG_FILE"]].compactMap { $0 } + [
                    workingDirectory + "/clouds.yaml", home + "/.config/openstack/clouds.yaml",
                    "/etc/openstack/clouds.yaml",
                ]
            guard let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw fail(
                    "cloud '\(name)' is asked for but no clouds.yaml was found (looked in "
                        + candidates.joined(separator: ", ") + ")")
            }
            var entry = try cloudEntry(name, file: file, fail: fail)
            // secure.yaml beside it holds the secrets of the same entries.
            let secure = (file as NSString).deletingLastPathComponent + "/secure.yaml"
            if FileManager.default.fileExists(atPath: secure),
                let extra = try? cloudEntry(name, file: secure, fail: fail)
            {
                entry = merge(entry, extra)
            }
            return try credentials(from: entry, source: "\(file): clouds.\(name)", environment: environment)
        }
        guard let authURL = environment["OS_AUTH_URL"], !authURL.isEmpty else {
            throw fail(
                "no OpenStack credentials: name a cloud of clouds.yaml (`cloud:` in the providers file or OS_CLOUD) "
                    + "or set OS_AUTH_URL and the other OS_* variables (source your openrc)")
        }
        var auth: [String: String] = ["auth_url": authURL]
        let names = [
            "OS_USERNAME": "username", "OS_PASSWORD": "password", "OS_PROJECT_NAME": "project_name",
            "OS_PROJECT_ID": "project_id", "OS_USER_DOMAIN_NAME": "user_domain_name",
            "OS_PROJECT_DOMAIN_NAME": "project_domain_name",
            "OS_APPLICATION_CREDENTIAL_ID": "application_credential_id",
            "OS_APPLICATION_CREDENTIAL_NAME": "application_credential_name",
            "OS_APPLICATION_CREDENTIAL_SECRET": "application_credential_secret", "OS_TENANT_NAME": "project_name",
            "OS_TENANT_ID": "project_id",
        ]
        for (variable, key) in names {
            if let value = environment[variable], !value.isEmpty, auth[key] == nil { auth[key] = value }
        }
        var entry: [String: Any] = ["auth": auth]
        if let type = environment["OS_AUTH_TYPE"] { entry["auth_type"] = type }
        if let region = environment["OS_REGION_NAME"] { entry["region_name"] = region }
        if let interface = environment["OS_INTERFACE"] ?? environment["OS_ENDPOINT_TYPE"] {
            entry["interface"] = interface
        }
        return try credentials(from: entry, source: "the OS_* variables", environment: environment)
    }

    static func cloudEntry(_ name: String, file: String, fail: (String) -> ProviderError) throws(ProviderError)
        -> [String: Any]
    {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw fail("cannot read \(file)") }
        let loaded: Any?
        // Yams's message quotes the offending line, which may hold a password: only where it is goes out.
        do { loaded = try Yams.load(yaml: text) } catch {
            switch error as? YamlError {
            case .scanner(_, _, let mark, _)?, .parser(_, _, let mark, _)?:
                throw fail("\(file) is not readable YAML (line \(mark.line), column \(mark.column))")
            default:
                throw fail("\(file) is not readable YAML")
            }
        }
        guard let clouds = (loaded as? [String: Any])?["clouds"] as? [String: Any] else {
            throw fail("\(file) has no `clouds:` mapping")
        }
        guard let entry = clouds[name] as? [String: Any] else {
            throw fail("\(file) has no cloud '\(name)'; it has: \(clouds.keys.sorted().joined(separator: ", "))")
        }
        return entry
    }

    static func merge(_ base: [String: Any], _ extra: [String: Any]) -> [String: Any] {
        var merged = base
        for (key, value) in extra {
            if let inner = value as? [String: Any], let existing = merged[key] as? [String: Any] {
                merged[key] = merge(existing, inner)
            } else {
                merged[key] = value
            }
        }
        return merged
    }

    static func credentials(from entry: [String: Any], source: String, environment: [String: String])
        throws(ProviderError) -> OpenStackCredentials
    {
        let fail = { (message: String) in ProviderError("openstack-credentials", provider: "openstack", message) }
        let auth = (entry["auth"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
        guard let url = auth["auth_url"], !url.isEmpty else { throw fail("\(source): auth.auth_url is missing") }
        let type = (entry["auth_type"] as? String ?? "").lowercased()
        // A domain given by id is kept as `id:X` (sent as {"id": X}); by name as it is.
        let userDomain =
            auth["user_domain_name"] ?? auth["user_domain_id"].map { "id:" + $0 } ?? auth["domain_name"]
            ?? auth["domain_id"].map { "id:" + $0 } ?? "Default"
        let method: OpenStackAuthMethod
        if type.contains("applicationcredential") || type.contains("application_credential")
            || auth["application_credential_id"] != nil || auth["application_credential_name"] != nil
        {
            guard let secret = auth["application_credential_secret"] else {
                throw fail("\(source): an application credential needs auth.application_credential_secret")
            }
            guard auth["application_credential_id"] != nil || auth["username"] != nil else {
                throw fail("\(source): give auth.application_credential_id, or its name with auth.username")
            }
            method = .applicationCredential(
                id: auth["application_credential_id"], name: auth["application_credential_name"],
                user: auth["username"], userDomain: userDomain, secret: secret)
        } else {
            guard let user = auth["username"], !user.isEmpty else { throw fail("\(source): auth.username is missing") }
            guard let password = auth["password"] else {
                throw fail("\(source): auth.password is missing (or in secure.yaml)")
            }
            guard auth["project_name"] != nil || auth["project_id"] != nil else {
                throw fail("\(source): give auth.project_name or auth.project_id to scope the token")
            }
            method = .password(
                user: user, userDomain: userDomain, password: password, project: auth["project_name"],
                projectID: auth["project_id"],
                projectDomain: auth["project_domain_name"] ?? auth["project_domain_id"].map { "id:" + $0 }
                    ?? auth["domain_name"] ?? auth["domain_id"].map { "id:" + $0 } ?? "Default")
        }
        let interface = (entry["interface"] as? String ?? "public").replacingOccurrences(of: "URL", with: "")
        guard ["public", "internal", "admin"].contains(interface) else {
            throw fail("\(source): interface '\(interface)' is not public, internal or admin")
        }
        return OpenStackCredentials(
            authURL: url, method: method, region: entry["region_name"] as? String, interface: interface)
    }
}
