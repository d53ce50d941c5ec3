import GuestMemory
import LinuxSystem
import Synchronization

/// A virtio device behind the virtio-mmio transport, version 2 (virtio 1.x, section 4.2): the
/// register window a vCPU reads and writes, feature negotiation, queue set-up, the device status
/// state machine and the interrupt status, around a `VirtioBackend` that does the device's work.
///
/// vCPU threads reach it through `read`/`write`; the device I/O thread calls `serveQueue` when a
/// queue's notifier fires. Both hold one lock: register accesses are short, and a batch of
/// requests is bounded by the queue size.
package final class VirtioMMIODevice: MMIODevice {
    /// The device's name in messages and the API (e.g. "blk0").
    package let name: String
    /// One eventfd per queue: the guest's QueueNotify writes signal it (through KVM's ioeventfd,
    /// or from the vCPU thread when that is unavailable), and the I/O thread polls it.
    package let queueNotifiers: [EventNotifier]
    private let memory: GuestMemoryMap
    private let interrupt: any InterruptSignal
    private let state: Locked<TransportState>
    private let brokenQueues = Atomic<Int>(0)
    /// Told why a driver broke a queue (the first few times: a hostile guest must not flood the log).
    private let report: @Sendable (String) -> Void
    static let reportLimit = 8

    package init(
        name: String, backend: sending any VirtioBackend, memory: GuestMemoryMap, interrupt: any InterruptSignal,
        report: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(SystemError) {
        self.name = name
        self.report = report
        self.memory = memory
        self.interrupt = interrupt
        var notifiers: [EventNotifier] = []
        for _ in backend.queueMaximumSizes { notifiers.append(try EventNotifier()) }
        queueNotifiers = notifiers
        state = Locked(TransportState(backend: backend))
    }

    /// How many times a driver broke a queue (each set DEVICE_NEEDS_RESET).
    package var brokenQueueCount: Int { brokenQueues.load(ordering: .relaxed) }

    /// When a rate limit holds the device back: the monotonic time (ns) to serve its queues again.
    package var throttledUntil: UInt64? { state.withLock { $0.backend.throttledUntil } }

    /// When the back-end wants its queues served again by its own timer, or nil.
    package var timerDeadline: UInt64? { state.withLock { $0.backend.timerDeadline } }

    /// The device type, for the command line and the API.
    package var deviceType: VirtioDeviceType { state.withLock { $0.backend.deviceType } }

    // MARK: Registers (vCPU threads)

    package func read(offset: UInt64, size: Int) -> UInt64 {
        state.withLock { state in
            if offset >= VirtioMMIORegister.configuration {
                return state.readConfiguration(at: Int(offset - VirtioMMIORegister.configuration), size: size)
            }
            guard size == 4 else { return 0 }
            return UInt64(state.readRegister(offset))
        }
    }

    package func write(offset: UInt64, size: Int, value: UInt64) {
        if offset == VirtioMMIORegister.queueNotify, size == 4 {
            // Only without an ioeventfd does a notification come this way.
            let index = Int(UInt32(truncatingIfNeeded: value))
            if index < queueNotifiers.count { queueNotifiers[index].signal() }
            return
        }
        let broken = state.withLock { state -> (Int, VirtqueueError)? in
            if offset >= VirtioMMIORegister.configuration {
                state.writeConfiguration(at: Int(offset - VirtioMMIORegister.configuration), size: size, value: value)
                return nil
            }
            guard size == 4 else { return nil }
            return state.writeRegister(offset, UInt32(truncatingIfNeeded: value), memory: memory)
        }
        if let (queue, error) = broken { queueBroke(queue, error) }
    }

    /// The driver's status register and the features it accepted.
    package var driverStatus: UInt32 { state.withLock { $0.status } }
    package var negotiatedFeatures: UInt64 { state.withLock { $0.driverFeatures } }

    /// Runs `body` on the back-end under the device's lock (reports, and changes while paused).
    package func withBackend<R>(_ body: (any VirtioBackend) -> R) -> R { state.withLock { body($0.backend) } }

    /// Changes the back-end's configuration space with `body` and tells the driver: a new
    /// configuration generation and a configuration-change interrupt (virtio 1.x, 4.2.2.1).
    package func changeConfiguration<E: Error>(_ body: (any VirtioBackend) throws(E) -> Void) throws(E) {
        let notify = try state.withLock { (state) throws(E) -> Bool in
            try body(state.backend)
            state.configurationGeneration &+= 1
            guard state.status & VirtioStatus.driverOK != 0 else { return false }
            state.interruptStatus |= 2
            return true
        }
        if notify { interrupt.signal() }
    }

    // MARK: State (the machine is paused and the I/O thread stopped)

    /// The transport's state; nothing is in flight once the I/O thread has stopped.
    package func saveState() -> VirtioTransportState {
        state.withLock { $0.saved() }
    }

    /// Loads a saved state, resolving enabled queues' rings in guest memory at their saved
    /// cursors; refuses a state that does not fit this device, leaving it reset. `kept` is the
    /// back-end's host side handed over by a live update (nil after a restore or migration).
    package func restoreState(_ saved: VirtioTransportState, kept: VirtioHandover? = nil) throws(VirtioStateError) {
        let changed = try state.withLock { (state) throws(VirtioStateError) -> Bool in
            try state.load(saved, kept: kept, memory: memory, device: name)
        }
        if changed { interrupt.signal() }
    }

    /// What the back-end keeps across a live update's exec (the machine paused, the I/O thread stopped).
    package func handOver() -> VirtioHandover? { state.withLock { $0.backend.handOver() } }

    // MARK: Queues (the I/O thread)

    /// Hands the back-end the I/O thread's services for its own host descriptors.
    package func attach(_ context: VirtioIOContext) { state.withLock { $0.backend.attach(context) } }

    /// A host descriptor the back-end watches is ready (the I/O thread).
    package func serveHostEvent(token: UInt32, _ event: Epoll.Event) { state.withLock { $0.backend.serveHostEvent(token: token, event) } }

    /// Runs `body` on the back-end under the device's lock (device-specific controls, e.g.
    /// vsock's transport reset).
    package func withBackend<Result: Sendable>(_ body: (any VirtioBackend) -> Result) -> Result {
        state.withLock { body($0.backend) }
    }

    /// Changes the back-end with `body`, then has the I/O thread look at every queue: a change
    /// such as a lifted rate limit lets requests go that wait on the ring, and no notification
    /// from the guest will come for them (it made them available long ago).
    package func reconfigure<Result: Sendable>(_ body: (any VirtioBackend) -> Result) -> Result {
        let result = state.withLock { body($0.backend) }
        for notifier in queueNotifiers { notifier.signal() }
        return result
    }

    /// Serves queue `index` after its notifier fired: takes every available chain, then arms
    /// the next notification, and interrupts the guest if it asked for it.
    package func serveQueue(_ index: Int) {
        queueNotifiers[index].drain()
        let (outcome, more) = state.withLock { state in state.serve(queue: index, memory: memory) }
        if more { queueNotifiers[index].signal() }
        switch outcome {
        case .none: break
        case .used: interrupt.signal()
        case .broken(let error): queueBroke(index, error)
        }
    }

    /// Counts and reports a queue the driver broke, and raises the configuration-change interrupt.
    private func queueBroke(_ queue: Int, _ error: VirtqueueError) {
        let count = brokenQueues.add(1, ordering: .relaxed).newValue
        if count <= Self.reportLimit {
            let suppressed = count == Self.reportLimit ? " (further reports suppressed)" : ""
            report("virtio device \(name): the driver broke queue \(queue): \(error); the device needs a reset\(suppressed)")
        }
        interrupt.signal()
    }
}

/// What a queue's service asks of the interrupt line.
enum QueueOutcome { case none, used, broken(VirtqueueError) }

/// The transport's registers and the queues in use; only touched under the device's lock.
struct TransportState {
    let backend: any VirtioBackend
    var status: UInt32 = 0
    var deviceFeaturesSelect: UInt32 = 0
    var driverFeaturesSelect: UInt32 = 0
    var driverFeatures: UInt64 = 0
    var queueSelect: UInt32 = 0
    var queues: [VirtqueueConfiguration]
    var active: [Virtqueue?]
    var interruptStatus: UInt32 = 0
    var configurationGeneration: UInt32 = 0

    init(backend: any VirtioBackend) {
        self.backend = backend
        queues = backend.queueMaximumSizes.map { VirtqueueConfiguration(size: $0) }
        active = [Virtqueue?](repeating: nil, count: queues.count)
    }

    var offeredFeatures: UInt64 { backend.deviceFeatures | VirtioFeature.transport }

    func readRegister(_ offset: UInt64) -> UInt32 {
        typealias R = VirtioMMIORegister
        switch offset {
        case R.magicValue: return R.magic
        case R.version: return R.modernVersion
        case R.deviceID: return backend.deviceType.rawValue
        case R.vendorID: return R.vendor
        case R.deviceFeatures:
            switch deviceFeaturesSelect {
            case 0: return UInt32(truncatingIfNeeded: offeredFeatures)
            case 1: return UInt32(truncatingIfNeeded: offeredFeatures >> 32)
            default: return 0
            }
        case R.queueSizeMaximum: return selectedQueue.map { UInt32(backend.queueMaximumSizes[$0]) } ?? 0
        case R.queueReady: return selectedQueue.map { queues[$0].ready ? 1 : 0 } ?? 0
        case R.interruptStatus: return interruptStatus
        case R.status: return status
        case R.sharedMemoryLengthLow, R.sharedMemoryLengthHigh: return .max  // no shared memory regions
        case R.configGeneration: return configurationGeneration
        default: return 0
        }
    }

    /// Handles a register write; the queue and why, when it left the device needing a reset.
    mutating func writeRegister(_ offset: UInt64, _ value: UInt32, memory: GuestMemoryMap) -> (Int, VirtqueueError)? {
        typealias R = VirtioMMIORegister
        switch offset {
        case R.deviceFeaturesSelect: deviceFeaturesSelect = value
        case R.driverFeaturesSelect: driverFeaturesSelect = value
        case R.driverFeatures:
            guard status & (VirtioStatus.featuresOK | VirtioStatus.driverOK) == 0 else { break }
            switch driverFeaturesSelect {
            case 0: driverFeatures = driverFeatures & ~0xffff_ffff | UInt64(value)
            case 1: driverFeatures = driverFeatures & 0xffff_ffff | UInt64(value) << 32
            default: break
            }
        case R.queueSelect: queueSelect = value
        case R.queueSize: updateSelectedQueue { $0.size = UInt16(truncatingIfNeeded: value) }
        case R.queueDescriptorLow: updateSelectedQueue { $0.descriptorTable = $0.descriptorTable & ~0xffff_ffff | UInt64(value) }
        case R.queueDescriptorHigh: updateSelectedQueue { $0.descriptorTable = $0.descriptorTable & 0xffff_ffff | UInt64(value) << 32 }
        case R.queueDriverLow: updateSelectedQueue { $0.availableRing = $0.availableRing & ~0xffff_ffff | UInt64(value) }
        case R.queueDriverHigh: updateSelectedQueue { $0.availableRing = $0.availableRing & 0xffff_ffff | UInt64(value) << 32 }
        case R.queueDeviceLow: updateSelectedQueue { $0.usedRing = $0.usedRing & ~0xffff_ffff | UInt64(value) }
        case R.queueDeviceHigh: updateSelectedQueue { $0.usedRing = $0.usedRing & 0xffff_ffff | UInt64(value) << 32 }
        case R.queueReady:
            guard let index = selectedQueue else { break }
            if value & 1 == 0 {
                queues[index].ready = false
                active[index] = nil
            } else if !queues[index].ready {
                queues[index].ready = true
                if status & VirtioStatus.driverOK != 0 { return activateQueue(index, memory: memory) }
            }
        case R.interruptAcknowledge: interruptStatus &= ~value
        case R.status: return writeStatus(value, memory: memory)
        default: break
        }
        return nil
    }

    var selectedQueue: Int? { Int(queueSelect) < queues.count ? Int(queueSelect) : nil }

    /// Changes the selected queue's registers, which the driver may do only while it is disabled.
    mutating func updateSelectedQueue(_ change: (inout VirtqueueConfiguration) -> Void) {
        guard let index = selectedQueue, !queues[index].ready, status & VirtioStatus.driverOK == 0 else { return }
        change(&queues[index])
    }

    /// The status state machine (virtio 1.x, 3.1.1); the queue and why when the device now needs a reset.
    mutating func writeStatus(_ value: UInt32, memory: GuestMemoryMap) -> (Int, VirtqueueError)? {
        guard value != 0 else {
            reset()
            return nil
        }
        var value = value
        let added = value & ~status
        if added & VirtioStatus.featuresOK != 0 {
            let acceptable = driverFeatures & ~offeredFeatures == 0 && driverFeatures & VirtioFeature.version1 != 0
            if !acceptable { value &= ~VirtioStatus.featuresOK }
        }
        if added & VirtioStatus.driverOK != 0, value & VirtioStatus.featuresOK == 0 { value &= ~VirtioStatus.driverOK }
        status = value | (status & VirtioStatus.needsReset)
        if added & VirtioStatus.driverOK != 0, status & VirtioStatus.driverOK != 0 {
            backend.activate(features: driverFeatures)
            for index in queues.indices where queues[index].ready {
                if let broken = activateQueue(index, memory: memory) { return broken }
            }
        }
        return nil
    }

    /// Resolves an enabled queue's rings; the error (and DEVICE_NEEDS_RESET) when they are unusable.
    mutating func activateQueue(_ index: Int, memory: GuestMemoryMap) -> (Int, VirtqueueError)? {
        do {
            active[index] = try Virtqueue(queues[index], maximumSize: backend.queueMaximumSizes[index], features: driverFeatures, memory: memory)
            return nil
        } catch {
            needReset()
            return (index, error)
        }
    }

    mutating func needReset() {
        status |= VirtioStatus.needsReset
        interruptStatus |= 2  // configuration change
        for index in active.indices { active[index] = nil }
    }

    mutating func reset() {
        backend.reset()
        status = 0
        deviceFeaturesSelect = 0
        driverFeaturesSelect = 0
        driverFeatures = 0
        queueSelect = 0
        queues = backend.queueMaximumSizes.map { VirtqueueConfiguration(size: $0) }
        for index in active.indices { active[index] = nil }
        interruptStatus = 0
    }

    func saved() -> VirtioTransportState {
        VirtioTransportState(
            status: status, driverFeatures: driverFeatures, deviceFeaturesSelect: deviceFeaturesSelect,
            driverFeaturesSelect: driverFeaturesSelect, queueSelect: queueSelect, interruptStatus: interruptStatus,
            configurationGeneration: configurationGeneration,
            queues: queues.indices.map { index in
                VirtioTransportState.SavedQueue(
                    configuration: queues[index], nextAvailable: (active[index]?.nextAvailable ?? 0) &- backend.heldChains(queue: index),
                    nextUsed: active[index]?.nextUsed ?? 0)
            })
    }

    /// Loads `saved`; true when the back-end changed its configuration on the way (the driver
    /// is owed a configuration-change interrupt).
    mutating func load(_ saved: VirtioTransportState, kept: VirtioHandover?, memory: GuestMemoryMap, device: String) throws(VirtioStateError) -> Bool {
        reset()
        guard saved.queues.count == queues.count else {
            throw .queueCount(device: device, saved: saved.queues.count, expected: queues.count)
        }
        guard saved.driverFeatures & ~offeredFeatures == 0 else {
            throw .features(device: device, saved: saved.driverFeatures, offered: offeredFeatures)
        }
        var resolved = [Virtqueue?](repeating: nil, count: queues.count)
        let running = saved.status & VirtioStatus.driverOK != 0 && saved.status & VirtioStatus.needsReset == 0
        for (index, queue) in saved.queues.enumerated() where queue.configuration.ready && running {
            do {
                resolved[index] = try Virtqueue(
                    queue.configuration, maximumSize: backend.queueMaximumSizes[index], features: saved.driverFeatures, memory: memory,
                    nextAvailable: queue.nextAvailable, nextUsed: queue.nextUsed)
            } catch { throw .queue(device: device, index: index, error) }
        }
        status = saved.status
        driverFeatures = saved.driverFeatures
        deviceFeaturesSelect = saved.deviceFeaturesSelect
        driverFeaturesSelect = saved.driverFeaturesSelect
        queueSelect = saved.queueSelect
        interruptStatus = saved.interruptStatus
        configurationGeneration = saved.configurationGeneration
        queues = saved.queues.map(\.configuration)
        active = resolved
        guard running else { return false }
        backend.activate(features: driverFeatures)
        let changed: Bool
        do { changed = try backend.restored(kept: kept) } catch {
            reset()
            throw .handover(device: device, error)
        }
        guard changed else { return false }
        configurationGeneration &+= 1
        interruptStatus |= 2
        return true
    }

    func readConfiguration(at offset: Int, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in 0..<min(max(size, 0), 8) {
            value |= UInt64(backend.configurationByte(at: offset + byte) ?? 0) << (8 * UInt64(byte))
        }
        return value
    }

    func writeConfiguration(at offset: Int, size: Int, value: UInt64) {
        for byte in 0..<min(max(size, 0), 8) {
            backend.writeConfiguration(UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))), at: offset + byte)
        }
    }

    /// Serves queue `index` for a few rounds: until it is empty and the next notification is
    /// armed, or until the round limit, when `more` says the I/O thread should come back (so one
    /// busy queue cannot starve the others).
    mutating func serve(queue index: Int, memory: GuestMemoryMap) -> (outcome: QueueOutcome, more: Bool) {
        guard status & VirtioStatus.driverOK != 0, status & VirtioStatus.needsReset == 0, var queue = active[index] else { return (.none, false) }
        var usedAny = false
        var more = false
        do {
            var rounds = 0
            repeat {
                if try backend.serve(queue: index, &queue, memory: memory) { usedAny = true }
                if backend.throttledUntil != nil { break }  // the I/O thread comes back at the deadline
                if backend.holdsBuffers(queue: index) { break }  // it arms the queue itself when it waits
                rounds += 1
                if rounds == 4 { more = try queue.armNotification(); break }  // armed either way: a stale event would lose the next notification
            } while try queue.armNotification()
        } catch {
            needReset()
            return (.broken(error), false)
        }
        let raise = usedAny && queue.needsInterrupt()
        active[index] = queue
        guard raise else { return (.none, more) }
        interruptStatus |= 1  // used buffer
        return (.used, more)
    }
}
