import Foundation

extension OpenStackProvider {
    /// A VM image to put into Glance.
    public struct ImageUpload: Sendable {
        public var file: String
        public var name: String
        /// qcow2, raw…
        public var diskFormat: String
        /// Glance properties (os_distro, os_version, hw_firmware_type…).
        public var properties: [String: String]

        public init(file: String, name: String, diskFormat: String = "qcow2", properties: [String: String] = [:]) {
            self.file = file
            self.name = name
            self.diskFormat = diskFormat
            self.properties = properties
        }
    }

    public struct UploadedImage: Sendable, Equatable {
        public var id: String
        public var size: Int64
        /// The image was already there (same name, same content): nothing was sent.
        public var reused: Bool
    }

    /// Uploads a VM image: create (queued), stream the file with PUT …/file, then check Glance's SHA-512 of what
    /// it stored against the file's. An image of the same name and content already active is reused; one whose
    /// upload failed is deleted, so nothing half-made stays in Glance.
    public func uploadImage(_ upload: ImageUpload, progress: @Sendable (String) -> Void = { _ in })
        async throws(ProviderError) -> UploadedImage
    {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: upload.file),
            let size = (attributes[.size] as? NSNumber)?.int64Value
        else { throw fail("bad-image", "cannot read \(upload.file)") }
        progress("hashing \(upload.file) (\(size) bytes)")
        let digest = try sha512(upload.file)
        let existing = try await api.call(
            .image, "GET", "/images?name=\(Self.query(upload.name))", what: "looking for image \(upload.name)"
        ).body["images"].array
        if let same = existing.first(where: {
            Self.holds($0, digest: digest) == true && $0["status"].string == "active"
        }),
            let id = same["id"].string
        {
            progress("image \(upload.name) is already in Glance with this content (\(id))")
            return UploadedImage(id: id, size: size, reused: true)
        }
        var body: [String: JSON] = [
            "name": .string(upload.name), "disk_format": .string(upload.diskFormat), "container_format": "bare",
            "visibility": "private",
        ]
        for (key, value) in upload.properties { body[key] = .string(value) }
        let created = try await api.call(
            .image, "POST", "/images", body: .object(body), what: "creating image \(upload.name)")
        guard let id = created.body["id"].string else {
            throw fail("openstack-request", "Glance created image \(upload.name) but gave no id")
        }
        progress("uploading \(size) bytes to image \(id)")
        do throws(ProviderError) {
            _ = try await api.upload(
                .image, "PUT", "/images/\(id)/file", file: URL(fileURLWithPath: upload.file),
                contentType: "application/octet-stream", what: "uploading image \(upload.name)")
            let stored = try await api.call(.image, "GET", "/images/\(id)", what: "reading image \(upload.name)").body
            guard stored["status"].string == "active" else {
                throw fail("image-error", "image \(upload.name) is \(stored["status"].string ?? "?") after its upload")
            }
            guard Self.holds(stored, digest: digest) != false else {
                throw fail(
                    "image-error",
                    "Glance's SHA-512 of image \(upload.name) differs from \(upload.file)'s: the upload was damaged")
            }
            return UploadedImage(id: id, size: stored["size"].int.map(Int64.init) ?? size, reused: false)
        } catch {
            // A lost answer to a PUT that went through (its retry then gets a 409): the image may be complete.
            if let stored = try? await api.call(.image, "GET", "/images/\(id)", what: "reading image \(upload.name)")
                .body,
                stored["status"].string == "active", Self.holds(stored, digest: digest) == true
            {
                return UploadedImage(id: id, size: stored["size"].int.map(Int64.init) ?? size, reused: false)
            }
            _ = try? await api.call(
                .image, "DELETE", "/images/\(id)", expect: [204, 404], what: "removing the failed image \(upload.name)")
            throw error
        }
    }

    /// Whether Glance's multihash of an image is this SHA-512: nil when Glance uses another algorithm or none.
    static func holds(_ image: JSON, digest: String) -> Bool? {
        guard image["os_hash_algo"].string == "sha512", let value = image["os_hash_value"].string else { return nil }
        return value == digest
    }

    func sha512(_ path: String) throws(ProviderError) -> String {
        let result: (status: Int32, stdout: String, stderr: String)
        do { result = try LocalProvider.execute("/usr/bin/sha512sum", ["--", path]) } catch {
            throw fail("bad-image", "cannot hash \(path): \(error)")
        }
        guard result.status == 0, let digest = result.stdout.split(separator: " ").first else {
            throw fail("bad-image", "cannot hash \(path): \(result.stderr)")
        }
        return String(digest)
    }
}
