import Testing
@testable import ObjectStore

/// The XML bodies the client reads, including ones a broken or hostile server might send.
@Suite struct S3RepliesTests {
    @Test func readsAnErrorBody() {
        let body = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match &amp; so on</Message><Resource>/b/k</Resource></Error>
            """.utf8)
        let (code, message) = S3Replies.error(body, fallback: "Forbidden")
        #expect(code == "SignatureDoesNotMatch")
        #expect(message == "The request signature we calculated does not match & so on")
        #expect(S3Replies.error([], fallback: "Forbidden") == ("", "Forbidden"))
        #expect(S3Replies.error(Array("<html><body>502</body></html>".utf8), fallback: "Bad Gateway") == ("", "Bad Gateway"))
        // The store's words reach a terminal: no escape sequences, no endless text.
        let hostile = Array("<Error><Code>X&#27;[2J</Code><Message>a&#27;]0;title&#7;b\nc</Message></Error>".utf8)
        #expect(S3Replies.error(hostile, fallback: "") == ("X\u{FFFD}[2J", "a\u{FFFD}]0;title\u{FFFD}b\u{FFFD}c"))
        #expect(S3Replies.error([], fallback: "Bad\u{1B}Gateway").message == "Bad\u{FFFD}Gateway")
        #expect(S3Replies.error([], fallback: String(repeating: "x", count: 10_000)).message.count == 512)
    }

    @Test func readsAListPage() throws {
        let body = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
            <KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
            <Contents><Key>p/a &lt;1&gt; </Key><LastModified>2026-11-22T02:20:46Z</LastModified><ETag>&quot;5d41&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>
            <Contents><Key><![CDATA[p/b&c]]></Key><Size>18446744073709551615</Size><Owner><ID>x</ID></Owner></Contents>
            <NextContinuationToken>token/+=</NextContinuationToken><EncodingType/></ListBucketResult>
            """.utf8)
        let page = try S3Replies.listPage(body)
        #expect(page.objects.map(\.key) == ["p/a <1> ", "p/b&c"])
        #expect(page.objects.map(\.size) == [5, UInt64.max])
        #expect(page.continuationToken == "token/+=")
        let last = try S3Replies.listPage(Array("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>".utf8))
        #expect(last.objects.isEmpty && last.continuationToken == nil)
    }

    @Test func readsTheUploadID() throws {
        let body = Array("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>abc-123</UploadId></InitiateMultipartUploadResult>".utf8)
        #expect(try S3Replies.uploadID(body) == "abc-123")
        #expect(throws: ObjectStoreError.self) { _ = try S3Replies.uploadID(Array("<InitiateMultipartUploadResult/>".utf8)) }
    }

    @Test func completeBodyEscapesETags() throws {
        let body = String(decoding: S3Replies.completeBody([(number: 1, etag: "\"a1\""), (number: 2, etag: "\"b2\"")]), as: UTF8.self)
        #expect(body == "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag></Part>"
            + "<Part><PartNumber>2</PartNumber><ETag>&quot;b2&quot;</ETag></Part></CompleteMultipartUpload>")
        #expect(try XMLTree.parse(Array(body.utf8)).children(named: "Part").map { $0.text(of: "ETag") } == ["\"a1\"", "\"b2\""])
    }

    @Test(arguments: [
        "",
        "not xml",
        "<ListBucketResult>",
        "<ListBucketResult></Other>",
        "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&bogus;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#xFFFFFFFF;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&amp</Key><Size>1</Size></Contents></ListBucketResult>",
        "<!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult/>",
        "<ListBucketResult a=\"1></ListBucketResult>",
        "<ListBucketResult/>trailing",
        "<Error><Code>X</Code></Error>",
        String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100),
    ])
    func refusesMalformedListings(text: String) {
        let error = #expect(throws: ObjectStoreError.self) { _ = try S3Replies.listPage(Array(text.utf8)) }
        guard case .malformed = error else {
            Issue.record("expected malformed for \(text.debugDescription), got \(String(describing: error))")
            return
        }
    }

    @Test func toleratesCommentsAttributesAndQuotedAngles() throws {
        let tree = try XMLTree.parse(Array("<?xml version='1.0'?><!-- hi --><r a='x>y' b=\"z\"><!-- in --><c>1</c><?pi ?><c>&#65;&#x42;</c></r>".utf8))
        #expect(tree.name == "r")
        #expect(tree.children(named: "c").map(\.text) == ["1", "AB"])
    }
}
