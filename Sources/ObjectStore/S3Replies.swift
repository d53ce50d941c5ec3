import Foundation

/// The XML bodies the client reads, each parsed into just what it needs.
package enum S3Replies {
    /// S3's Code and Message from an error body; for a body that is not S3's error XML (a HEAD
    /// reply has none, a proxy may send HTML) the code is empty and the message is `fallback`.
    /// Both are the store's words, printed in messages: control characters (a terminal's escape
    /// sequences) become U+FFFD, and each is cut at 512 characters.
    package static func error(_ body: [UInt8], fallback: String) -> (code: String, message: String) {
        guard !body.isEmpty, let root = try? XMLTree.parse(body), root.name == "Error" else { return ("", printable(fallback)) }
        let code = printable(root.text(of: "Code") ?? "")
        let message = printable(root.text(of: "Message") ?? "")
        return (code, message.isEmpty ? printable(fallback) : message)
    }

    /// `text` safe to print: no control characters, at most 512 characters.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(512).map {
            $0.properties.generalCategory == .control ? "\u{FFFD}" : $0
        }))
    }

    /// One page of ListObjectsV2: the keys and sizes, and the token for the next page if any.
    package struct ListPage: Sendable {
        var objects: [(key: String, size: UInt64)]
        var continuationToken: String?
    }

    package static func listPage(_ body: [UInt8]) throws(ObjectStoreError) -> ListPage {
        let root = try XMLTree.parse(body)
        guard root.name == "ListBucketResult" else { throw .malformed("ListObjectsV2 reply is <\(root.name)>, not <ListBucketResult>") }
        var objects: [(key: String, size: UInt64)] = []
        for entry in root.children(named: "Contents") {
            guard let key = entry.text(of: "Key") else { throw .malformed("ListObjectsV2 entry without a <Key>") }
            guard let sizeText = entry.text(of: "Size"), let size = UInt64(sizeText.trimmed) else {
                throw .malformed("ListObjectsV2 entry \(key.debugDescription) without a valid <Size>")
            }
            objects.append((key: key, size: size))
        }
        let truncated = root.text(of: "IsTruncated")?.trimmed.lowercased() == "true"
        var token: String?
        if truncated {
            guard let next = root.text(of: "NextContinuationToken"), !next.isEmpty else {
                throw .malformed("ListObjectsV2 reply is truncated but has no <NextContinuationToken>")
            }
            token = next
        }
        return ListPage(objects: objects, continuationToken: token)
    }

    /// The UploadId from InitiateMultipartUpload's reply.
    package static func uploadID(_ body: [UInt8]) throws(ObjectStoreError) -> String {
        let root = try XMLTree.parse(body)
        guard root.name == "InitiateMultipartUploadResult", let id = root.text(of: "UploadId")?.trimmed, !id.isEmpty else {
            throw .malformed("InitiateMultipartUpload reply has no <UploadId>")
        }
        return id
    }

    /// The CompleteMultipartUpload request body: parts in ascending order with their ETags.
    static func completeBody(_ parts: [(number: Int, etag: String)]) -> [UInt8] {
        var xml = "<CompleteMultipartUpload>"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escaped(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        return Array(xml.utf8)
    }

    /// CreateBucket's body outside us-east-1, where S3 wants the region named.
    static func createBucketBody(region: String) -> [UInt8] {
        Array(("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            + "<LocationConstraint>\(escaped(region))</LocationConstraint></CreateBucketConfiguration>").utf8)
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
