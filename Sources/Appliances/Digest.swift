import CArchiveSupport
import Foundation

/// A streaming SHA-256 (OpenSSL's libcrypto), for blob digests and layer diff IDs.
final class SHA256Stream {
    private let context: OpaquePointer

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    func update(_ data: Data) { data.withUnsafeBytes { update($0) } }

    /// `sha256:` and the hex digest; the stream is finished.
    func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return "sha256:" + digest.map { String(format: "%02x", $0) }.joined()
    }

    static func digest(_ data: Data) -> String {
        let stream = SHA256Stream()
        stream.update(data)
        return stream.finish()
    }
}
