import ControlAPI
import Dispatch
import FoundationEssentials
import Glibc
import LinuxSystem
import Synchronization
import VMM

/// Sends the keys a display's viewers type to the VM's control socket (PUT /vm/keyboard), in
/// order, on a queue of its own so the RFB threads never wait on the VM.
///
/// When the guest's keyboard buffer is full the VM takes only some keys; the rest are sent
/// again every 10 ms, and dropped with a note if the guest reads none for 5 s. A VM that cannot
/// be reached is noted once and its keys dropped; later keys are tried again. At most
/// `queueLimit` keys wait: a viewer sending faster than the guest reads (a guest that reads a
/// few keys at a time never stalls for 5 s) has the rest dropped, not the display's memory grown.
final class KeyForwarder: Sendable {
    static let queueLimit = 4096

    private struct Pending {
        var events: [KeyboardEvent] = []
        var flushing = false
    }

    private let client: ControlClient
    private let pending = Locked(Pending())
    private let delivery = DispatchQueue(label: "engram.keys")
    private let warned = Atomic<Bool>(false)
    private let overflowNoted = Atomic<Bool>(false)

    init(socketPath: String) {
        client = ControlClient(socketPath: socketPath, timeoutSeconds: 5)
    }

    /// Queues one key event from a viewer (or drops it, with a note once, when `queueLimit` wait).
    func send(keysym: UInt32, down: Bool) {
        let start = pending.withLock { state -> Bool? in
            guard state.events.count < Self.queueLimit else { return nil }
            state.events.append(KeyboardEvent(keysym: keysym, down: down))
            defer { state.flushing = true }
            return !state.flushing
        }
        guard let start else {
            if !overflowNoted.exchange(true, ordering: .relaxed) {
                Diagnostics.note("dropping key events: \(Self.queueLimit) are waiting for the guest to read its keyboard")
            }
            return
        }
        if start { delivery.async { self.flush() } }
    }

    /// Key events waiting to be delivered.
    var queuedCount: Int { pending.withLock { $0.events.count } }

    /// Delivers everything queued, including keys that arrive meanwhile.
    private func flush() {
        var stalledSince: ContinuousClock.Instant?
        while true {
            let batch = pending.withLock { state in
                if state.events.isEmpty { state.flushing = false }
                return Array(state.events.prefix(KeyboardInput.maximumEvents))
            }
            if batch.isEmpty { return }
            let accepted = deliver(batch)
            pending.withLock { $0.events.removeFirst(min(accepted, $0.events.count)) }
            if accepted == batch.count {
                stalledSince = nil
                continue
            }
            if accepted > 0 { stalledSince = nil }
            let since = stalledSince ?? .now
            stalledSince = since
            if ContinuousClock.now - since > .seconds(5) {
                let dropped = pending.withLock { state in defer { state.events.removeAll() }; return state.events.count }
                Diagnostics.note("dropped \(dropped) key events: the guest has not read its keyboard for 5 s")
                stalledSince = nil
                continue
            }
            usleep(10_000)
        }
    }

    /// Sends `batch`; returns how many the VM took (all of them when it refuses or cannot be
    /// reached, so they are not retried forever).
    private func deliver(_ batch: [KeyboardEvent]) -> Int {
        do {
            let body = try JSONCoding.makeEncoder().encode(KeyboardInput(events: batch))
            let answer = try client.send(route: .keyboard, body: Array(body))
            guard answer.status == 200 else {
                warnOnce("the VM refused keys (HTTP \(answer.status)): \(String(decoding: answer.body, as: UTF8.self))")
                return batch.count
            }
            warned.store(false, ordering: .relaxed)
            let report = try? JSONCoding.makeDecoder().decode(KeyboardReport.self, from: Data(answer.body))
            return report?.accepted ?? batch.count
        } catch {
            warnOnce("keys not delivered to \(client.socketPath): \(error)")
            return batch.count
        }
    }

    private func warnOnce(_ message: String) {
        if !warned.exchange(true, ordering: .relaxed) { Diagnostics.note(message) }
    }
}
