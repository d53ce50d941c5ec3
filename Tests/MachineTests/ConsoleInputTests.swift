import Foundation
import Glibc
@testable import Machine
import SystemPackage
import Testing
import TestSupport

/// The console reader hands keys to the guest's UART as it takes them, and Ctrl-A x quits
/// whatever the guest does with its UART.
@Suite struct ConsoleInputTests {
    private static func pipeEnds() throws -> (read: FileDescriptor, write: FileDescriptor) {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        return (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
    }

    /// A guest that never reads its UART (or put it in loopback) takes no key: Ctrl-A x still
    /// quits. (The reader waited for the keys to go before reading again, so it never saw it.)
    @Test func ctrlAXQuitsWhileTheGuestTakesNoKeys() throws {
        let (read, write) = try Self.pipeEnds()
        defer { try? read.close(); try? write.close() }
        let offered = Shared(0), quitted = Shared(false)
        let console = ConsoleInput(deliver: { keys in offered.value = keys.count; return 0 }, quit: { quitted.value = true }, input: read)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { console.run(); done.signal() }
        _ = try write.writeAll(Array("hello".utf8))
        for _ in 0..<5000 where offered.value == 0 { usleep(1000) }  // a hang guard
        #expect(offered.value == 5, "the keys wait for the guest")
        _ = try write.writeAll([ConsoleInput.escape, UInt8(ascii: "x")])
        #expect(done.wait(timeout: .now() + 10) == .success, "Ctrl-A x ended the reader")
        #expect(quitted.value)
    }

    /// Keys read before the end of input all reach the guest, a byte at a time if that is how
    /// it takes them; Ctrl-A Ctrl-A is one Ctrl-A.
    @Test func keysBeforeTheEndOfInputAreAllDelivered() throws {
        let (read, write) = try Self.pipeEnds()
        defer { try? read.close() }
        let delivered = Shared<[UInt8]>([])
        let console = ConsoleInput(deliver: { keys in delivered.value.append(keys[0]); return 1 }, quit: {}, input: read)
        _ = try write.writeAll(Array("ticks\r".utf8) + [ConsoleInput.escape, ConsoleInput.escape])
        try write.close()
        console.run()
        #expect(delivered.value == Array("ticks\r".utf8) + [ConsoleInput.escape])
    }
}
