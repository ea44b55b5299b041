import Foundation

/// Keyed pseudonyms: HMAC-SHA-256 under the project's secret, so the same patient, study, series or instance gets
/// the same replacement in every run of the same project, and another project (another secret) gets unrelated
/// ones. Nothing here can be reversed without the secret.
public struct Pseudonyms: Sendable {
    let key: [UInt8]
    let memo = Memo()

    /// UIDs already mapped: a study's, series' and frame of reference's UIDs recur in every instance.
    final class Memo: @unchecked Sendable {
        // `uids` is only touched with `lock` held.
        let lock = NSLock()
        var uids: [String: String] = [:]
    }

    /// The secret must be at least 16 bytes (a file of random bytes or a long passphrase).
    public init(secret: [UInt8]) throws(StagingError) {
        guard secret.count >= 16 else {
            throw StagingError(
                .usage, "the project secret is \(secret.count) bytes; give at least 16 (32 random bytes is best)")
        }
        key = secret
    }

    func mac(_ domain: String, _ value: String) -> [UInt8] {
        Crypto.hmacSHA256(key: key, message: Array((domain + "\u{0}" + value).utf8))
    }

    /// A patient pseudonym such as `P7KQ2M9XD4TB`: 12 characters of Crockford base 32 (60 bits).
    public func patient(_ patientID: String) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var bits = mac("patient", patientID).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var out = ""
        for _ in 0..<12 {
            out.append(alphabet[Int(bits & 31)])
            bits >>= 5
        }
        return "P" + out.dropLast()
    }

    /// A replacement UID under the 2.25 root (PS3.5 §B.2): the decimal of the first 128 bits of the keyed MAC.
    public func uid(_ original: String) -> String {
        memo.lock.lock()
        let known = memo.uids[original]
        memo.lock.unlock()
        if let known { return known }
        let mapped = computeUID(original)
        memo.lock.lock()
        if memo.uids.count > 100_000 { memo.uids.removeAll() }
        memo.uids[original] = mapped
        memo.lock.unlock()
        return mapped
    }

    func computeUID(_ original: String) -> String {
        var digits = Array(mac("uid", original).prefix(16))
        var decimal: [UInt8] = []
        while digits.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in digits.indices {
                let value = remainder << 8 | Int(digits[index])
                digits[index] = UInt8(value / 10)
                remainder = value % 10
            }
            decimal.append(UInt8(remainder))
        }
        return "2.25." + String(decimal.reversed().map { Character(String($0)) })
    }

    /// One shift in days per patient for the modified-dates option: between 1 and 3652 days back.
    public func dayShift(_ patientID: String) -> Int {
        let bits = mac("dates", patientID).prefix(4).reduce(0) { $0 << 8 | Int($1) }
        return -(1 + bits % 3652)
    }
}
