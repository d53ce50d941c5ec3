import GuestMemory
import LinuxSystem
import Synchronization

/// The destination's page channels of a pre-copy over several connections: a thread per
/// channel reads its frames straight into the regions (`MigrationReceiver.receiveChannel`),
/// all in step through one `PassBarrier`. The first failure is kept by the barrier and ends
/// every channel, so the source's senders fail at once and the control connection's next wait
/// reports it.
package final class PageChannelReceivers {
    package let barrier: PassBarrier
    private let links: [MigrationLink]
    private var threads: [NamedThread] = []
    private let received = Tally()

    /// Starts a thread per link. The threads run under the control role's filter, as the
    /// control connection's loop (on the main thread) does the same work.
    package init(links: [MigrationLink], regions: [GuestRegion]) throws(TransportError) {
        self.links = links
        barrier = PassBarrier(channels: links.count)
        for (index, link) in links.enumerated() {
            let barrier = barrier, all = links
            do {
                threads.append(try NamedThread.spawn(name: "receive-ch\(index)", role: .control) { [received] in
                    var receiver = MigrationReceiver(link: link, regions: regions)
                    do throws(TransportError) { try receiver.receiveChannel(index, barrier: barrier) } catch {
                        barrier.fail(error)
                        for other in all { other.close() }
                    }
                    received.pages.add(receiver.pagesReceived, ordering: .relaxed)
                })
            } catch {
                end()
                throw .malformed(peer: link.peer, reason: "no thread for page channel \(index): \(error)")
            }
        }
    }

    /// Pages the channels wrote (complete once `end` has returned).
    package var pagesReceived: UInt64 { received.pages.load(ordering: .relaxed) }

    /// Ends every channel and waits for their threads.
    package func end() {
        barrier.fail(.closed(peer: "the page channels (ended)"))
        for link in links { link.close() }
        for thread in threads { thread.join() }
        threads = []
    }
}

private final class Tally: Sendable {
    let pages = Atomic<UInt64>(0)
}
