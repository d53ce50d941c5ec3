import Foundation
import Testing
@testable import ObjectStore

/// The signer against published answers: AWS's own Signature Version 4 examples for S3 (the
/// "GET /test.txt" example with every intermediate step, and the list and lifecycle examples
/// for the query string), and two requests signed by botocore, an independent implementation,
/// for encoded keys and query values.
@Suite struct SigV4SignerTests {
    /// The credentials and instant of AWS's examples.
    let signer = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             sessionToken: nil, region: "us-east-1")
    let may24 = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test func awsExampleGetObject() {
        let signed = signer.sign(method: "GET", encodedPath: "/test.txt", query: [],
                                 headers: [(name: "Host", value: "examplebucket.s3.amazonaws.com"), (name: "Range", value: "bytes=0-9")],
                                 payloadHash: emptyHash, date: may24)
        #expect(signed.canonicalRequest == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        let authorization = signed.headers.first { $0.name == "Authorization" }?.value
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(signed.headers.first { $0.name == "x-amz-date" }?.value == "20130524T000000Z")
        #expect(signed.headers.first { $0.name == "x-amz-content-sha256" }?.value == emptyHash)
    }

    @Test func awsExampleListObjectsSortsAndEncodesTheQuery() {
        // Given out of order: the canonical query is sorted by name.
        let signed = signer.sign(method: "GET", encodedPath: "/", query: [(name: "prefix", value: "J"), (name: "max-keys", value: "2")],
                                 headers: [(name: "Host", value: "examplebucket.s3.amazonaws.com")], payloadHash: emptyHash, date: may24)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "max-keys=2&prefix=J")
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func awsExampleBucketLifecycleSignsABareSubresourceAsNameEquals() {
        let signed = signer.sign(method: "GET", encodedPath: "/", query: [(name: "lifecycle", value: "")],
                                 headers: [(name: "Host", value: "examplebucket.s3.amazonaws.com")], payloadHash: emptyHash, date: may24)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "lifecycle=")
        #expect(signed.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        // What is sent is the bare name, as S3 clients send it.
        let request = S3Request(method: .GET, bucket: "examplebucket", key: "", query: [(name: "lifecycle", value: "")], operation: "GET")
        #expect(request.encodedQuery == "lifecycle")
    }

    /// A key with a space, '+', non-ASCII letters and the characters Foundation leaves alone,
    /// as the client encodes it; the answer is botocore's for the same request.
    @Test func encodedKeyMatchesBotocore() {
        let request = S3Request(method: .PUT, bucket: "bucket-1", key: "snap shots/a+b/été~_.-!*", operation: "PUT")
        #expect(request.encodedPath == "/bucket-1/snap%20shots/a%2Bb/%C3%A9t%C3%A9~_.-%21%2A")
        let signed = signer.sign(method: "PUT", encodedPath: request.encodedPath, query: [],
                                 headers: [(name: "host", value: "127.0.0.1:8333")],
                                 payloadHash: SigV4Signer.hexSHA256(Array("hello".utf8)), date: may24)
        #expect(signed.signature == "ab3efa8e05715370beb46252b4335456ae9831658b00739a90584638eed9c7e0")
    }

    @Test func encodedQueryValuesMatchBotocore() {
        let request = S3Request(method: .GET, bucket: "bucket-1", key: "",
                                query: [(name: "list-type", value: "2"), (name: "prefix", value: "snap shots/"),
                                        (name: "continuation-token", value: "a/b==")],
                                operation: "ListObjectsV2")
        #expect(request.encodedPath == "/bucket-1")
        #expect(request.encodedQuery == "continuation-token=a%2Fb%3D%3D&list-type=2&prefix=snap%20shots%2F")
        let signed = signer.sign(method: "GET", encodedPath: request.encodedPath, query: request.query,
                                 headers: [(name: "host", value: "127.0.0.1:8333")], payloadHash: emptyHash, date: may24)
        #expect(signed.signature == "a1a9eda10699a321f00a11114f954ba005cde0661742b08bbd8367bfa4c24b67")
    }

    @Test func sessionTokenIsSignedAndSent() {
        let withToken = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                    sessionToken: "token-value", region: "us-east-1")
        let signed = withToken.sign(method: "GET", encodedPath: "/test.txt", query: [],
                                    headers: [(name: "Host", value: "examplebucket.s3.amazonaws.com")], payloadHash: emptyHash, date: may24)
        #expect(signed.headers.contains { $0.name == "x-amz-security-token" && $0.value == "token-value" })
        #expect(signed.canonicalRequest.contains("x-amz-security-token:token-value\n"))
        #expect(signed.canonicalRequest.contains("host;x-amz-content-sha256;x-amz-date;x-amz-security-token"))
    }

    @Test func signerNeverShowsTheSecret() {
        for text in [String(describing: signer), String(reflecting: signer), { var out = ""; dump(signer, to: &out); return out }()] {
            #expect(!text.contains("wJalrXUtnFEMI"), "\(text)")
        }
    }
}
