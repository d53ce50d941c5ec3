import Foundation
import GuestMemory
import Paging
import SnapshotFormat
import Synchronization
import Testing
import TestSupport
@testable import Transport

/// A client whose connections drop gets the server back and goes on with the right pages; a
/// server that stays away, or comes back with another snapshot, ends the client's requests.
@Suite struct ReconnectTests {
    let directory = TemporaryDirectory()

    @Test func brokenPooledConnectionIsReplaced() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint))
        relay.cut()
        // The pooled connection is dead: the READ on it fails, is sent again on a new one.
        #expect(try source.bytes(region: 0, first: 100, count: 1300) == chain.bytes(region: 0, first: 100, count: 1300))
        #expect(source.transferStatistics?.reconnects == 1)
        #expect(try source.bytes(region: 1, first: 0, count: 256) == chain.bytes(region: 1, first: 0, count: 256))
        #expect(source.transferStatistics?.reconnects == 1)
    }

    /// A read asked for ahead whose connection is lost before its reply comes is asked for again.
    @Test func readAskedForAheadIsAskedAgainOnANewConnection() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint))
        // A small read first, so the receive window stays small: most of the 4 MiB asked for
        // ahead is still on the server's side of the relay when it is cut.
        let first = PageRun(region: 0, firstPage: 0, count: 8), second = PageRun(region: 0, firstPage: 8, count: 1024)
        #expect(try source.backgroundBytes(first, then: second) == chain.bytes(region: 0, first: 0, count: 8))
        relay.cut()
        #expect(try source.backgroundBytes(second, then: nil) == chain.bytes(region: 0, first: 8, count: 1024))
        #expect(source.transferStatistics?.reconnects == 1)
        #expect(source.transferStatistics?.pagesReceived == 1032)
    }

    @Test func requestWaitsWhileTheServerIsAway() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint, reconnectTimeoutMilliseconds: 30_000))
        relay.point(at: nil)
        relay.cut()
        let result = Shared<[UInt8]?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            result.value = try? source.bytes(region: 0, first: 0, count: 64)
            done.signal()
        }
        // Not a measurement: the read retries meanwhile whether this sleep is long or short.
        usleep(300_000)
        relay.point(at: server.endpoint)
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(result.value == (try chain.bytes(region: 0, first: 0, count: 64)))
        #expect(source.transferStatistics?.reconnects == 1)
    }

    @Test func serverThatStaysAwayEndsTheRequest() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint, reconnectTimeoutMilliseconds: 300))
        relay.point(at: nil)
        relay.cut()
        let error = #expect(throws: PageSourceError.self) { _ = try source.bytes(region: 0, first: 0, count: 1) }
        guard case .remote(let message) = error else {
            Issue.record("expected a remote error, got \(String(describing: error))")
            return
        }
        #expect(message.contains("reconnect"))
    }

    /// A server that takes every connection but loses every request is away too: the request
    /// ends once the reconnect timeout has passed since it first lost its connection. (Each
    /// reconnect used to start the timeout again, so such a server held a fault forever.)
    @Test func aServerThatDropsEveryRequestEndsIt() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try RemotePageSource(connector: server.connector(reconnectTimeoutMilliseconds: 300))
        let attempts = Shared(0)
        let outcome = Shared<PageSourceError?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do {
                try source.withConnection { (_) throws(TransportError) in
                    attempts.value += 1
                    throw .closed(peer: "the test")
                }
            } catch { outcome.value = error as? PageSourceError }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 60) == .success, "the request ended")
        guard case .remote(let message) = outcome.value else {
            Issue.record("expected a remote error, got \(String(describing: outcome.value))")
            return
        }
        #expect(message.contains("reconnect"))
        #expect(attempts.value > 1, "it was tried again on new connections first")
        #expect(source.transferStatistics?.reconnects == UInt64(attempts.value - 1))
    }

    @Test func serverBackWithAnotherSnapshotIsRefused() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let other = try TransportFixture.snapshot(in: directory, name: "other.snap", seed: 99)
        #expect(other.fingerprint != chain.fingerprint)
        let server = try TestServer(chain: chain)
        let impostor = try TestServer(chain: other)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint))
        relay.point(at: impostor.endpoint)
        relay.cut()
        // The guest must never get a page of another snapshot: the read fails instead.
        let error = #expect(throws: PageSourceError.self) { _ = try source.bytes(region: 0, first: 0, count: 1) }
        #expect(error?.description.contains("another snapshot") == true)
        // Once the first snapshot's server is reachable again, reads go on.
        relay.point(at: server.endpoint)
        #expect(try source.bytes(region: 0, first: 0, count: 1) == chain.bytes(region: 0, first: 0, count: 1))
    }

    @Test func streamCutMidwayResumesWhereItStopped() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint))
        let references = (0..<chain.pageCount(region: 0)).filter { !chain.isZeroPage(region: 0, page: PageIndex($0)) }.reversed()
            .map { PageReference(region: 0, page: PageIndex($0)) }
        var stream = try source.streamPages(references)
        var received: [UInt8] = []
        var next = 0
        while next < references.count {
            let count = min(50, references.count - next)
            var buffer = [UInt8](repeating: 0, count: count * 4096)
            var span = buffer.mutableSpan
            var bytes = span.mutableBytes
            try stream.receive(into: &bytes)
            received += buffer
            next += count
            // Whatever was already in flight is read first; the rest is asked for again.
            if next == 100 { relay.cut() }
        }
        var expected: [UInt8] = []
        for reference in references { expected += try chain.bytes(region: 0, first: reference.page.rawValue, count: 1) }
        #expect(received == expected)
    }
}
