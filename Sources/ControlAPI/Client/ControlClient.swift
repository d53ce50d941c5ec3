import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix

/// A blocking HTTP client for a VM's control socket, for `engram ctl` and tests.
///
/// Each `send` opens a connection, sends one request with `Connection: close`, and waits for the
/// whole answer. It runs on NIO's shared event loop group, so it must not be called from an event loop.
package struct ControlClient: Sendable {
    /// The largest answer body accepted.
    package static let maximumReplyBytes = 16 << 20

    /// The control socket of the VM to talk to.
    package let socketPath: String
    /// How long to wait for a whole answer (pause waits for the vCPUs).
    package let timeoutSeconds: Int64

    /// A client for the VM serving `socketPath`.
    package init(socketPath: String, timeoutSeconds: Int64 = 60) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends `method` `path` with an optional JSON `body` and returns the answer's status and body, whatever the status.
    package func send(method: String, path: String, body: [UInt8]? = nil) throws(ControlClientError) -> (status: Int, body: [UInt8]) {
        guard FileManager.default.fileExists(atPath: socketPath) else { throw .socketMissing(path: socketPath) }
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: (status: Int, body: [UInt8]).self)
        let channel = try connect(group: group, promise: promise)
        defer { _ = try? channel.close().wait() }

        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "localhost")
        headers.add(name: "Accept", value: "application/json")
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.count))
        } else if method != "GET" {
            headers.add(name: "Content-Length", value: "0")
        }
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, !body.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)

        let timeout = channel.eventLoop.scheduleTask(in: .seconds(timeoutSeconds)) {
            promise.fail(ResponseCollector.Failure.timedOut)
        }
        defer { timeout.cancel() }
        do {
            return try promise.futureResult.wait()
        } catch ResponseCollector.Failure.closedEarly {
            throw .closedBeforeReply(path: socketPath)
        } catch ResponseCollector.Failure.malformed(let reason) {
            throw .malformedReply(path: socketPath, reason: reason)
        } catch ResponseCollector.Failure.timedOut {
            throw .timedOut(path: socketPath, seconds: timeoutSeconds)
        } catch let error as IOError where error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            throw .closedBeforeReply(path: socketPath)
        } catch {
            throw .connectionFailed(path: socketPath, reason: FailureReason.text(error))
        }
    }

    private func connect(
        group: MultiThreadedEventLoopGroup, promise: EventLoopPromise<(status: Int, body: [UInt8])>
    ) throws(ControlClientError) -> any Channel {
        do {
            return try ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(
                            ResponseCollector(promise: promise, maximumBodyBytes: Self.maximumReplyBytes))
                    }
                }
                .connect(unixDomainSocketPath: socketPath)
                .wait()
        } catch let error as IOError {
            promise.fail(error)
            switch error.errnoCode {
            case ENOENT: throw .socketMissing(path: socketPath)
            case ECONNREFUSED: throw .connectionRefused(path: socketPath)
            case EACCES, EPERM: throw .permissionDenied(path: socketPath)
            default: throw .connectionFailed(path: socketPath, reason: FailureReason.text(error))
            }
        } catch {
            promise.fail(error)
            throw .connectionFailed(path: socketPath, reason: FailureReason.text(error))
        }
    }
}
