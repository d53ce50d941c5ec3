/// s3://BUCKET/KEY, parsed and checked (bucket name rules; key non-empty unless allowed).
///
/// Checked up front so that a typo fails at the command line with a reason rather than as an
/// obscure 400 from the store halfway through an upload. Keys are kept to what survives every
/// S3 gateway unchanged: SeaweedFS maps keys onto filer paths, so empty, "." and ".." segments
/// would be silently normalised there and a snapshot's chunk could land under another name.
package struct ObjectLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    package let bucket: String
    package let key: String

    /// Parses "s3://bucket/some/key"; the key must not be empty.
    package init(parsing text: String) throws(ObjectStoreError) {
        try self.init(parsing: text, allowingEmptyKey: false)
    }

    /// Parses "s3://bucket/some/key", or "s3://bucket" and "s3://bucket/" (an empty key: a whole
    /// bucket, or a prefix to append to) when `allowingEmptyKey`. One trailing "/" is dropped, so
    /// "s3://bucket/snapshots/" and "s3://bucket/snapshots" name the same prefix.
    package init(parsing text: String, allowingEmptyKey: Bool) throws(ObjectStoreError) {
        let scheme = "s3://"
        guard text.hasPrefix(scheme) else {
            throw .invalidLocation(text, reason: "expected s3://BUCKET/KEY")
        }
        let rest = text.dropFirst(scheme.count)
        let bucket: Substring
        var key: Substring
        if let slash = rest.firstIndex(of: "/") {
            bucket = rest[..<slash]
            key = rest[rest.index(after: slash)...]
        } else {
            bucket = rest
            key = ""
        }
        if key.hasSuffix("/") { key = key.dropLast() }
        if let reason = Self.bucketProblem(String(bucket)) { throw .invalidLocation(text, reason: reason) }
        if key.isEmpty {
            guard allowingEmptyKey else { throw .invalidLocation(text, reason: "no object key after the bucket name") }
        } else if let reason = Self.keyProblem(String(key)) {
            throw .invalidLocation(text, reason: reason)
        }
        self.bucket = String(bucket)
        self.key = String(key)
    }

    /// A location from its parts, checked as a parsed one is (the key may be empty).
    package init(bucket: String, key: String) throws(ObjectStoreError) {
        if let reason = Self.bucketProblem(bucket) { throw .invalidLocation("s3://\(bucket)/\(key)", reason: reason) }
        if !key.isEmpty, let reason = Self.keyProblem(key) { throw .invalidLocation("s3://\(bucket)/\(key)", reason: reason) }
        self.bucket = bucket
        self.key = key
    }

    /// key + "/" + component (just the component when the key is empty): how a snapshot names the
    /// objects under its prefix. The component is the caller's own name, not user input.
    package func appending(_ component: String) -> ObjectLocation {
        ObjectLocation(checkedBucket: bucket, key: key.isEmpty ? component : key + "/" + component)
    }

    package var description: String { key.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(key)" }

    private init(checkedBucket: String, key: String) {
        self.bucket = checkedBucket
        self.key = key
    }

    /// S3's bucket naming rules (general purpose buckets), or nil when `name` follows them.
    package static func bucketProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "no bucket name" }
        guard (3...63).contains(bytes.count) else { return "a bucket name has 3 to 63 characters" }
        func isLowerOrDigit(_ byte: UInt8) -> Bool { (0x61...0x7a).contains(byte) || (0x30...0x39).contains(byte) }
        for byte in bytes where !(isLowerOrDigit(byte) || byte == 0x2e || byte == 0x2d) {
            return "a bucket name has only lower-case letters, digits, '.' and '-'"
        }
        guard let first = bytes.first, let last = bytes.last, isLowerOrDigit(first), isLowerOrDigit(last) else {
            return "a bucket name starts and ends with a letter or digit"
        }
        if name.contains("..") { return "a bucket name has no two adjacent periods" }
        if name.contains(".-") || name.contains("-.") { return "a bucket name has no '-' next to a '.'" }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ part in !part.isEmpty && part.allSatisfy(\.isASCIIDigitCharacter) }) {
            return "a bucket name is not an IP address"
        }
        if name.hasPrefix("xn--") || name.hasPrefix("sthree-") { return "a bucket name does not start with xn-- or sthree-" }
        if name.hasSuffix("-s3alias") || name.hasSuffix("--ol-s3") { return "a bucket name does not end with -s3alias or --ol-s3" }
        return nil
    }

    /// Problems with a non-empty key, or nil.
    package static func keyProblem(_ key: String) -> String? {
        if key.utf8.count > 1024 { return "an object key is at most 1024 bytes" }
        if key.hasPrefix("/") { return "an object key does not start with '/'" }
        for scalar in key.unicodeScalars where scalar.value < 0x20 || scalar.value == 0x7f {
            return "an object key has no control characters"
        }
        for segment in key.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { return "an object key has no empty path segment ('//')" }
            if segment == "." || segment == ".." { return "an object key has no '.' or '..' path segment" }
        }
        return nil
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
