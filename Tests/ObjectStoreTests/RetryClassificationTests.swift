import Foundation
import ObjectStore
import Testing

/// Which replies are retried and which are final, against a scripted server that sends exactly
/// the replies a real store sends only under load or misconfiguration.
@Suite struct RetryClassificationTests {
    // Short delays between attempts, but attempts that may take long: on a loaded machine a 2 s
    // limit once timed an attempt out, and the retry met the next scripted reply (a 200).
    let quick = RetryPolicy(firstDelayMilliseconds: 5, maximumDelayMilliseconds: 20, giveUpAfterMilliseconds: 60_000,
                            attemptTimeoutMilliseconds: 30_000, connectTimeoutMilliseconds: 10_000)
    let location = try! ObjectLocation(parsing: "s3://bucket/some key")

    func client(_ server: ScriptedServer, retry: RetryPolicy? = nil) -> S3Client {
        S3Client(configuration: S3Configuration(endpoint: server.endpoint, accessKeyID: "AKIDTEST", secretAccessKey: "scripted-secret"),
                 retry: retry ?? quick)
    }

    @Test func serverErrorsAndSlowDownAreRetried() throws {
        let server = try ScriptedServer([
            .error(503, "SlowDown", "Please reduce your request rate."), .error(500, "InternalError"),
            .error(502, "BadGateway"), .error(504, "GatewayTimeout"), .error(400, "RequestTimeout"),
            .error(429, "TooManyRequests"), ScriptedServer.Reply(status: 200, body: Array("payload".utf8)),
        ])
        let client = client(server)
        defer { client.shutdown() }
        #expect(try client.getObject(location) == Array("payload".utf8))
        #expect(client.statistics.retries == 6)
        #expect(client.statistics.requests == 7)
        // Every attempt was signed afresh, for the right path.
        for request in server.received {
            #expect(request.requestLine == "GET /bucket/some%20key HTTP/1.1")
            #expect(request.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDTEST/") == true)
            #expect(request.headers["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            #expect(request.headers["x-amz-date"]?.count == 16)
        }
    }

    @Test(arguments: [(403, "AccessDenied"), (400, "InvalidArgument"), (409, "OperationAborted"), (301, "PermanentRedirect"), (416, "InvalidRange")])
    func clientErrorsAreNotRetried(status: Int, code: String) throws {
        let server = try ScriptedServer([.error(status, code, "scripted refusal"), ScriptedServer.Reply(status: 200)])
        let client = client(server)
        defer { client.shutdown() }
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location) }
        #expect(error == .refused(location, status: status, code: code, message: "scripted refusal"))
        #expect(client.statistics.requests == 1 && client.statistics.retries == 0)
    }

    /// A ranged GET keeps only its range of a whole object (200), but an error's body whole: its
    /// code says whether to retry (a 400 RequestTimeout is retried).
    @Test func aRangedGetReadsTheWholeErrorBody() throws {
        let object = (0..<100).map { UInt8($0) }
        let server = try ScriptedServer([
            .error(400, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period."),
            ScriptedServer.Reply(status: 200, body: object),
        ])
        let client = client(server)
        defer { client.shutdown() }
        #expect(try client.getObject(location, range: 40..<60) == Array(object[40..<60]))
        #expect(client.statistics.retries == 1)
    }

    /// A store that trickles a reply (a byte every 50 ms, never idle long enough for the read
    /// timeout) is given up on once the retry budget is spent: the whole attempt has a deadline,
    /// so a fault waiting on it does not wait for the 50 s the reply would take.
    @Test func aTricklingReplyEndsWithTheRetryBudget() throws {
        let server = try ScriptedServer([ScriptedServer.Reply(status: 200, body: [UInt8](repeating: 7, count: 1000), byteDelayMilliseconds: 50)])
        let client = client(server, retry: RetryPolicy(firstDelayMilliseconds: 10, maximumDelayMilliseconds: 40, giveUpAfterMilliseconds: 1500,
                                                       attemptTimeoutMilliseconds: 1000))
        defer { client.shutdown() }
        let started = Date()
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location) }
        guard case .unavailable = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
        #expect(Date().timeIntervalSince(started) < 40, "the trickle was waited out")
    }

    @Test func persistentFailureGivesUpAsUnavailable() throws {
        let server = try ScriptedServer(Array(repeating: .error(503, "SlowDown", "Please reduce your request rate."), count: 100))
        let client = client(server, retry: RetryPolicy(firstDelayMilliseconds: 10, maximumDelayMilliseconds: 40, giveUpAfterMilliseconds: 300))
        defer { client.shutdown() }
        let error = #expect(throws: ObjectStoreError.self) { try client.putObject(location, body: [1, 2, 3]) }
        guard case .unavailable(let endpoint, let reason, let attempts) = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
        #expect(endpoint == server.endpoint)
        #expect(reason == "PUT s3://bucket/some key: HTTP 503 SlowDown: Please reduce your request rate.")
        #expect(attempts >= 3 && attempts <= 40, "\(attempts) attempts")
        #expect(client.statistics.bytesSent == UInt64(3 * attempts))
        #expect(!String(describing: error!).contains("scripted-secret"))
    }

    @Test func headReadsTheSizeAndTreats404AsAbsent() throws {
        let server = try ScriptedServer([
            ScriptedServer.Reply(status: 200, headers: [("Content-Length-Ignored", "x")], body: Array(repeating: 7, count: 1234)),
            ScriptedServer.Reply(status: 404), ScriptedServer.Reply(status: 503), ScriptedServer.Reply(status: 403),
        ])
        let client = client(server)
        defer { client.shutdown() }
        #expect(try client.headObject(location) == 1234)
        #expect(try client.headObject(location) == nil)
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.headObject(location) }
        guard case .refused(_, 403, "", let message) = error else {
            Issue.record("expected a bodiless 403 refusal, got \(String(describing: error))")
            return
        }
        #expect(message == "Forbidden")  // the status's reason phrase, for want of a body
        #expect(String(describing: error!).contains("check the access key and secret"))
        #expect(client.statistics.retries == 1)
    }

    @Test func rangedGetWantsExactlyTheRange() throws {
        let object = (0..<100).map { UInt8($0) }
        let server = try ScriptedServer([
            // A store that ignores Range: the client cuts the range out of the whole object.
            ScriptedServer.Reply(status: 200, body: object),
            ScriptedServer.Reply(status: 206, headers: [("Content-Range", "bytes 90-99/100")], body: Array(object[90..<100])),
            // Short: the object ends before the range does.
            ScriptedServer.Reply(status: 206, headers: [("Content-Range", "bytes 95-99/100")], body: Array(object[95..<100])),
            ScriptedServer.Reply(status: 200, body: object),
        ])
        let client = client(server)
        defer { client.shutdown() }
        #expect(try client.getObject(location, range: 10..<20) == Array(object[10..<20]))
        #expect(try client.getObject(location, range: 90..<100) == Array(object[90..<100]))
        #expect(server.received[1].headers["range"] == "bytes=90-99")
        for range: Range<UInt64> in [95..<105, 99..<101] {
            let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location, range: range) }
            guard case .refused(_, 416, "InvalidRange", let message) = error else {
                Issue.record("expected InvalidRange, got \(String(describing: error))")
                continue
            }
            #expect(message.contains("has 100 bytes"))
        }
        #expect(try client.getObject(location, range: 5..<5) == [])  // no request at all
        #expect(server.received.count == 4)
    }

    /// A range fetched in pieces: each piece its own array, from a 206 or cut from a store's 200;
    /// a short reply is refused as past the end, and pieces that do not add up are refused unsent.
    @Test func aRangedGetInPiecesGivesEachPieceItsBytes() throws {
        let object = (0..<100).map { UInt8($0) }
        let server = try ScriptedServer([
            ScriptedServer.Reply(status: 206, headers: [("Content-Range", "bytes 10-39/100")], body: Array(object[10..<40])),
            ScriptedServer.Reply(status: 200, body: object),
            ScriptedServer.Reply(status: 206, headers: [("Content-Range", "bytes 95-99/100")], body: Array(object[95..<100])),
        ])
        let client = client(server)
        defer { client.shutdown() }
        let expected = [Array(object[10..<14]), Array(object[14..<30]), Array(object[30..<40])]
        #expect(try client.getObject(location, range: 10..<40, pieces: [4, 16, 10]) == expected)
        #expect(try client.getObject(location, range: 10..<40, pieces: [4, 16, 10]) == expected)
        let short = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location, range: 95..<105, pieces: [5, 5]) }
        guard case .refused(_, 416, "InvalidRange", _) = short else {
            Issue.record("expected InvalidRange, got \(String(describing: short))")
            return
        }
        #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location, range: 0..<10, pieces: [4, 4]) }
        #expect(server.received.count == 3)
    }

    @Test func listingFollowsContinuationTokens() throws {
        func page(_ keys: [String], next: String?) -> ScriptedServer.Reply {
            var xml = "<ListBucketResult><IsTruncated>\(next != nil)</IsTruncated>"
            for key in keys { xml += "<Contents><Key>\(key)</Key><Size>\(key.count)</Size></Contents>" }
            if let next { xml += "<NextContinuationToken>\(next)</NextContinuationToken>" }
            return ScriptedServer.Reply(status: 200, body: Array((xml + "</ListBucketResult>").utf8))
        }
        let server = try ScriptedServer([page(["p/a", "p/b"], next: "tok/1="), .error(503, "SlowDown"), page(["p/c"], next: nil)])
        let client = client(server)
        defer { client.shutdown() }
        let listed = try client.listObjects(bucket: "bucket", prefix: "p/")
        #expect(listed.map(\.key) == ["p/a", "p/b", "p/c"])
        #expect(listed.map(\.size) == [3, 3, 3])
        #expect(server.received.map(\.requestLine) == [
            "GET /bucket?list-type=2&prefix=p%2F HTTP/1.1",
            "GET /bucket?continuation-token=tok%2F1%3D&list-type=2&prefix=p%2F HTTP/1.1",
            "GET /bucket?continuation-token=tok%2F1%3D&list-type=2&prefix=p%2F HTTP/1.1",
        ])
    }

    @Test func completionErrorInsideA200IsRetried() throws {
        let server = try ScriptedServer([
            ScriptedServer.Reply(status: 200, body: Array("<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>".utf8)),
            ScriptedServer.Reply(status: 200, headers: [("ETag", "\"e1\"")]),
            ScriptedServer.Reply(status: 200, body: Array("<Error><Code>InternalError</Code><Message>try again</Message></Error>".utf8)),
            ScriptedServer.Reply(status: 200, body: Array("<CompleteMultipartUploadResult><ETag>\"x-1\"</ETag></CompleteMultipartUploadResult>".utf8)),
        ])
        let client = client(server)
        defer { client.shutdown() }
        let upload = try client.startMultipartUpload(location)
        #expect(upload.uploadID == "up-1")
        try upload.uploadPart(1, body: [1, 2, 3])
        try upload.complete()
        #expect(client.statistics.retries == 1)
        let lines = server.received.map(\.requestLine)
        #expect(lines == [
            "POST /bucket/some%20key?uploads HTTP/1.1",
            "PUT /bucket/some%20key?partNumber=1&uploadId=up-1 HTTP/1.1",
            "POST /bucket/some%20key?uploadId=up-1 HTTP/1.1",
            "POST /bucket/some%20key?uploadId=up-1 HTTP/1.1",
        ])
    }
}
