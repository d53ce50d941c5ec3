import SystemPackage
import Testing
@testable import LinuxSystem

/// LinuxSystem's one error type says each failure the way the three types it replaced did.
@Suite struct SystemErrorTests {
    @Test func eachCaseKeepsItsMessage() {
        #expect(SystemError("bind", on: "/run/vm.sock", .addressInUse).description == "/run/vm.sock: bind failed: \(Errno.addressInUse)")
        #expect(SystemError(refusing: "/tmp/f", because: "it is a FIFO", .invalidArgument).description == "cannot write /tmp/f: it is a FIFO")
        #expect(SystemError.address("x:y", reason: "no port").description == "x:y is not a usable address: no port; expected HOST:PORT")
        #expect(SystemError.addressInUse("127.0.0.1:7000").description == "127.0.0.1:7000 is already in use")
        #expect(SystemError.closed(peer: "10.0.0.1:7000").description == "10.0.0.1:7000 closed the connection")
        #expect(SystemError.compression(call: "deflate", code: -2).description == "zlib deflate failed with code -2")
    }

    @Test func aRefusalStillNamesItsCallAndErrno() {
        let error = SystemError(refusing: "/tmp/f", because: "it is a FIFO", .invalidArgument)
        #expect(error.call == "open (it is a FIFO)")
        #expect(error.subject == "/tmp/f")
        #expect(error.errno == .invalidArgument)
        #expect(error.refusal == "it is a FIFO")
        #expect(SystemError("open", on: "/tmp/f", .noSuchFileOrDirectory).refusal == nil)
    }

    @Test func onlyATimedOutCallIsATimeout() {
        #expect(SystemError("recv", on: "peer", .timedOut).isTimeout)
        #expect(!SystemError("recv", on: "peer", .connectionReset).isTimeout)
        #expect(!SystemError.closed(peer: "peer").isTimeout)
    }
}
