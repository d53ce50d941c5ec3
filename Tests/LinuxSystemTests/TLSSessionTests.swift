import Foundation
import Glibc
import Testing
@testable import LinuxSystem

/// A TLS session whose peer has gone: writing to it is an error on that connection, never a
/// SIGPIPE (which would end a serving or migrating VMM). Checked on a thread that blocks SIGPIPE,
/// so a raised signal waits as pending instead of ending the test process.
struct TLSSessionTests {
    @Test func writingToAPeerThatLeftIsAnErrorNotASignal() throws {
        let key = [UInt8](repeating: 7, count: 32)
        let (clientSocket, serverSocket) = try StreamSocket.pair(peer: "the peer")
        let client = try TLSContext(side: .client, credentials: .preSharedKey(key)).session(on: clientSocket, peerHost: nil)
        let server = try TLSContext(side: .server, credentials: .preSharedKey(key)).session(on: serverSocket, peerHost: nil)
        let serverDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? server.handshake()
            serverDone.signal()
        }
        try client.handshake()
        serverDone.wait()
        serverSocket.shutdown()

        var pipeSignal = sigset_t(), previous = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let bytes = [UInt8](repeating: 0x5a, count: 256 << 10)
        #expect(throws: SystemError.self) {
            for _ in 0..<64 {
                try client.send(bytes)
                try client.flush()
            }
        }
        var pending = sigset_t()
        sigpending(&pending)
        let raised = sigismember(&pending, SIGPIPE) == 1
        if raised {
            var timeout = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&pipeSignal, nil, &timeout)
        }
        #expect(!raised, "the write raised SIGPIPE")
    }
}
