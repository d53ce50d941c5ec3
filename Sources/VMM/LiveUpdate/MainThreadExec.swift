import Dispatch
import LinuxSystem
import Machine
import Migration

/// Runs a live update's exec on the main thread, which otherwise waits for the machine to end.
///
/// exec from another thread makes the kernel swap that thread in as the process's leader, and
/// the old leader's exit looks like the process ending to observers that watch it with a pidfd
/// (a parent using Foundation's Process, for one, then blocks reaping it). From the main
/// thread, exec replaces the image and nothing else changes, as with QEMU's exec request.
package final class MainThreadExec: Sendable {
    private struct Request: Sendable {
        let path: String
        let arguments: [String]
        let keeping: [CInt]
        let reply: @Sendable (String) -> Void
    }

    private enum Event: Sendable {
        case ended(MachineOutcome)
        case exec(Request)
    }

    private struct Queue {
        var events: [Event] = []
        /// The main thread has taken the machine's end: no exec will run any more.
        var ended = false
    }

    private let queue = Locked(Queue())
    private let posted = DispatchSemaphore(value: 0)
    static let endedReason = "the machine ended before the exec"

    /// On the main thread: waits for the machine's outcome, performing exec requests meanwhile.
    func waitForOutcome(of machine: Machine) -> MachineOutcome { waitForOutcome { machine.waitForOutcome() } }

    /// The same, with the outcome from `outcome` (called once, on a thread of its own). Exec
    /// requests still waiting when it comes, and any made later, are answered at once: the
    /// update that made them gives up, rather than wait for a main thread that has moved on.
    func waitForOutcome(_ outcome: @escaping @Sendable () -> MachineOutcome) -> MachineOutcome {
        // A thread of its own, not Dispatch's pool, whose start-up would compete with the guest's first moments.
        let wait: @Sendable () -> Void = { [self] in post(.ended(outcome())) }
        do { try NamedThread.spawnDetached(name: "outcome-wait", role: .control, wait) } catch { DispatchQueue.global().async(execute: wait) }
        while true {
            posted.wait()
            switch queue.withLock({ $0.events.removeFirst() }) {
            case .ended(let outcome):
                let waiting = queue.withLock { queue in
                    queue.ended = true
                    defer { queue.events = [] }
                    return queue.events.compactMap { if case .exec(let request) = $0 { request } else { nil } }
                }
                for request in waiting { request.reply(Self.endedReason) }
                return outcome
            case .exec(let request): request.reply(ProcessImage.exec(request.path, arguments: request.arguments, keeping: request.keeping))
            }
        }
    }

    /// From any other thread: has the main thread exec `path`. Returns only if exec failed, with the reason.
    func exec(_ path: String, arguments: [String], keeping descriptors: [CInt]) -> String {
        let failed = DispatchSemaphore(value: 0)
        let reason = Locked("")
        let request = Request(path: path, arguments: arguments, keeping: descriptors) { text in
            reason.withLock { $0 = text }
            failed.signal()
        }
        guard post(.exec(request)) else { return Self.endedReason }
        failed.wait()
        return reason.withLock { $0 }
    }

    /// Queues `event` for the main thread; false once it has taken the machine's end.
    @discardableResult
    private func post(_ event: Event) -> Bool {
        let queued = queue.withLock { queue in
            guard !queue.ended else { return false }
            queue.events.append(event)
            return true
        }
        if queued { posted.signal() }
        return queued
    }
}
