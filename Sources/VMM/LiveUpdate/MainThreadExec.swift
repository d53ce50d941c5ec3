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

    private let events = Locked<[Event]>([])
    private let posted = DispatchSemaphore(value: 0)

    /// On the main thread: waits for the machine's outcome, performing exec requests meanwhile.
    func waitForOutcome(of machine: Machine) -> MachineOutcome {
        // A thread of its own, not Dispatch's pool, whose start-up would compete with the guest's first moments.
        let wait: @Sendable () -> Void = { [self] in post(.ended(machine.waitForOutcome())) }
        do { try NamedThread.spawnDetached(name: "outcome-wait", role: .control, wait) } catch { DispatchQueue.global().async(execute: wait) }
        while true {
            posted.wait()
            switch events.withLock({ $0.removeFirst() }) {
            case .ended(let outcome): return outcome
            case .exec(let request): request.reply(ProcessImage.exec(request.path, arguments: request.arguments, keeping: request.keeping))
            }
        }
    }

    /// From any other thread: has the main thread exec `path`. Returns only if exec failed, with the reason.
    func exec(_ path: String, arguments: [String], keeping descriptors: [CInt]) -> String {
        let failed = DispatchSemaphore(value: 0)
        let reason = Locked("")
        post(.exec(Request(path: path, arguments: arguments, keeping: descriptors) { text in
            reason.withLock { $0 = text }
            failed.signal()
        }))
        failed.wait()
        return reason.withLock { $0 }
    }

    private func post(_ event: Event) {
        events.withLock { $0.append(event) }
        posted.signal()
    }
}
