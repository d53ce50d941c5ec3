import ControlAPI
import Glibc
import LinuxSystem

/// A machine stand-in that records every control call and keeps a running/paused/stopping state.
final class FakeVMControl: PartialVMControl {
    private struct State {
        var vmState = "running"
        var calls: [String] = []
        var failure: VMControlError?
    }

    private let state = Locked(State())
    private let onShutdown = Locked<(@Sendable () -> Void)?>(nil)

    static let regions = [
        MemoryRegionInfo(name: "ram", sizeInBytes: 512 << 20, backing: "shared-file", path: "/dev/shm/vm.ram",
                         ranges: [GuestRangeInfo(guestAddress: 0, sizeInBytes: 512 << 20, regionOffset: 0)]),
        MemoryRegionInfo(name: "vram", sizeInBytes: 16 << 20, backing: "memfd", path: nil,
                         ranges: [GuestRangeInfo(guestAddress: 0xfd00_0000, sizeInBytes: 16 << 20, regionOffset: 0)]),
    ]

    /// The control calls made so far, in order ("vmInfo", "pause", ...).
    var calls: [String] { state.withLock { $0.calls } }

    /// Makes the next pause, resume or shutdown throw `error`.
    func failNext(with error: VMControlError) { state.withLock { $0.failure = error } }

    /// Runs `action` when shutdown() is called (the machine's main thread waking up).
    func whenShutDown(_ action: @escaping @Sendable () -> Void) { onShutdown.withLock { $0 = action } }

    func vmInfo() -> VMInfo {
        state.withLock { state in
            state.calls.append("vmInfo")
            return VMInfo(state: state.vmState, vcpus: 2, uptimeSeconds: 1.5, memorySizeInBytes: 512 << 20)
        }
    }

    /// Keys typed so far; `keyboardRoom` events are taken per call at most (a full buffer).
    let typed = Locked<[KeyboardEvent]>([])
    let keyboardRoom = Locked(Int.max)

    func keyboard(_ events: [KeyboardEvent]) throws(VMControlError) -> Int {
        let taken = Array(events.prefix(keyboardRoom.withLock { $0 }))
        typed.withLock { $0 += taken }
        return taken.count
    }

    func memoryRegions() -> [MemoryRegionInfo] {
        state.withLock { $0.calls.append("memoryRegions") }
        return Self.regions
    }

    /// How long pause() takes, as a machine whose vCPUs are slow to stop.
    let pauseDelay = Locked<Double>(0)

    func pause() throws(VMControlError) {
        let delay = pauseDelay.withLock { $0 }
        if delay > 0 { usleep(UInt32(delay * 1_000_000)) }
        try change("pause", from: "running", to: "paused")
    }

    func resume() throws(VMControlError) {
        try change("resume", from: "paused", to: "running")
    }

    func shutdown() throws(VMControlError) {
        try change("shut down", from: nil, to: "stopping")
        onShutdown.withLock { $0 }?()
    }

    private func change(_ operation: String, from required: String?, to next: String) throws(VMControlError) {
        let result: Result<Void, VMControlError> = state.withLock { state in
            state.calls.append(operation)
            if let failure = state.failure {
                state.failure = nil
                return .failure(failure)
            }
            if let required, state.vmState != required {
                return .failure(.invalidState(operation: operation, state: state.vmState))
            }
            state.vmState = next
            return .success(())
        }
        try result.get()
    }
}
