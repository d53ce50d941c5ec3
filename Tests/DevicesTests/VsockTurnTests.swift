@testable import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Testing
import TestSupport

/// The list of vsock connections owed a packet stays as short as the connections in it: busy
/// connections taking turns do not grow it, and a connection torn down while listed leaves it.
@Suite struct VsockTurnTests {
    private let directory = TemporaryDirectory()
    private var path: String { directory.path("v.sock") }
    typealias Op = VirtioVsockTests.Op

    private func scheduled(_ guest: VsockTestGuest) -> (footprint: Int, waiting: [VsockKey]) {
        guest.device.withBackend { backend in
            let vsock = backend as! VirtioVsock
            return (vsock.scheduled.footprint, Array(vsock.scheduled.waiting))
        }
    }

    /// Two host clients stream to the guest at once, so each packet sends a connection to the
    /// back of the line behind the other: thousands of packets, and the list holds about two.
    /// (It was emptied only when drained, and grew by a key per packet.)
    @Test func busyConnectionsTakingTurnsKeepTheListShort() throws {
        let guest = try VsockTestGuest(path: path)
        let (first, _) = try VirtioVsockTests.connectFromHost(guest, port: 5000, guestCredit: 1 << 30)
        let (second, _) = try VirtioVsockTests.connectFromHost(guest, port: 5001, guestCredit: 1 << 30)
        let chunk = [UInt8](repeating: 5, count: 64 << 10)
        var received = [UInt32: Int](), largest = 0
        for _ in 0..<40 {
            first.write(chunk)
            second.write(chunk)
            var round = 0
            while round < 2 * chunk.count, let packet = try guest.receive(within: 2) {
                guard packet.operation == Op.rw else { continue }
                received[packet.destinationPort, default: 0] += packet.payload.count
                round += packet.payload.count
                largest = max(largest, scheduled(guest).footprint)
            }
        }
        #expect(received == [5000: 40 * chunk.count, 5001: 40 * chunk.count], "every byte of both streams arrived")
        #expect(largest <= 64, "the list held \(largest) keys at most")
    }

    /// A connection torn down while it waits for its turn leaves the list at once; the other
    /// one keeps its place.
    @Test func aConnectionResetWhileListedLeavesTheList() throws {
        let guest = try VsockTestGuest(path: path)
        let (first, firstPort) = try VirtioVsockTests.connectFromHost(guest, port: 5000, guestCredit: 1 << 30)
        let (second, secondPort) = try VirtioVsockTests.connectFromHost(guest, port: 5001, guestCredit: 1 << 30)
        // More than the guest's posted buffers hold: both connections stay owed a packet.
        let chunk = [UInt8](repeating: 6, count: 160 << 10)
        first.write(chunk)
        second.write(chunk)
        let both = [VsockKey(localPort: firstPort, peerPort: 5000), VsockKey(localPort: secondPort, peerPort: 5001)]
        #expect(guest.wait(5) { Set(scheduled(guest).waiting) == Set(both) })
        try guest.send(sourcePort: 5000, destinationPort: firstPort, operation: Op.reset)
        #expect(guest.wait(5) { scheduled(guest).waiting == [both[1]] }, "\(scheduled(guest).waiting)")
        #expect(first.closes())
        withExtendedLifetime(second) {}
    }

    @Test func theQueueDropsWhatWasTakenAndKeepsOrder() {
        var queue = TakeFirstQueue<Int>()
        var expected = 0, next = 0, inOrder = true, largest = 0
        // Always two waiting, as with two connections taking turns: the array stays small.
        for _ in 0..<2 { queue.append(next); next += 1 }
        for _ in 0..<10_000 {
            inOrder = inOrder && queue.takeFirst() == expected
            expected += 1
            queue.append(next)
            next += 1
            largest = max(largest, queue.footprint)
        }
        #expect(inOrder)
        #expect(largest <= 64, "the array held \(largest) entries")
        #expect(Array(queue.waiting) == [expected, expected + 1])
        #expect(queue.removeFirst { $0 == expected + 1 })
        #expect(!queue.removeFirst { $0 == 12 }, "a key taken long ago is not there")
        #expect(queue.takeFirst() == expected && queue.takeFirst() == nil && queue.isEmpty)
        queue.replace(with: [7, 8])
        #expect(queue.count == 2 && queue.first == 7)
    }
}
