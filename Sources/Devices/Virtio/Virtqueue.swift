import GuestMemory

/// A split virtqueue in use (virtio 1.x, section 2.7): the descriptor table and both rings
/// resolved to guest windows once, when the driver enabled the queue, and the device's two
/// cursors. Takes chains from the available ring, returns them through the used ring, and
/// decides when the driver wants an interrupt.
///
/// Every index read from guest memory is checked before use and every chain is bounded, so a
/// hostile driver can make the queue fail (`VirtqueueError`) but never make the device touch
/// memory outside guest RAM or loop.
package struct Virtqueue: Sendable {
    package let size: UInt16
    private let descriptors: GuestWindow
    private let available: GuestWindow
    private let used: GuestWindow
    private let indirectAllowed: Bool
    private let eventIndex: Bool
    /// The next available-ring entry to take (the driver's avail idx the device has reached).
    package private(set) var nextAvailable: UInt16
    /// The next used-ring entry to fill (the used idx published).
    package private(set) var nextUsed: UInt16
    /// The used index when the driver was last interrupted (or when the queue started).
    private var usedAtLastSignal: UInt16

    /// Resolves `configuration`'s rings in `memory`; throws when they are not guest RAM, are
    /// misaligned, or the size is wrong. `nextAvailable`/`nextUsed` restart a saved queue.
    package init(
        _ configuration: VirtqueueConfiguration, maximumSize: UInt16, features: UInt64, memory: GuestMemoryMap,
        nextAvailable: UInt16 = 0, nextUsed: UInt16 = 0
    ) throws(VirtqueueError) {
        let size = configuration.size
        guard size > 0, size <= maximumSize, size & (size - 1) == 0 else { throw .badQueueSize(size, maximum: maximumSize) }
        let eventIndex = features & VirtioFeature.eventIndex != 0
        let n = Int(size)
        self.size = size
        descriptors = try Self.window(configuration.descriptorTable, count: 16 * n, alignment: 16, memory)
        available = try Self.window(configuration.availableRing, count: 4 + 2 * n + 2, alignment: 2, memory)
        used = try Self.window(configuration.usedRing, count: 4 + 8 * n + 2, alignment: 4, memory)
        indirectAllowed = features & VirtioFeature.indirectDescriptors != 0
        self.eventIndex = eventIndex
        self.nextAvailable = nextAvailable
        self.nextUsed = nextUsed
        usedAtLastSignal = nextUsed
    }

    private static func window(_ address: UInt64, count: Int, alignment: UInt64, _ memory: GuestMemoryMap) throws(VirtqueueError) -> GuestWindow {
        guard address % alignment == 0 else { throw .misaligned(address: address, alignment: alignment) }
        do { return try memory.window(at: GuestAddress(address), count: count) } catch {
            throw .outsideGuestRAM(address: address, length: UInt64(count))
        }
    }

    /// Whether the driver has made a chain available that the device has not taken.
    package func hasAvailable() throws(VirtqueueError) -> Bool {
        let published = available.loadAcquire16(at: 2)
        let pending = published &- nextAvailable
        guard pending <= size else { throw .availableIndexRanAhead(by: pending, queueSize: size) }
        return pending > 0
    }

    /// Takes the next available chain into `chain`; false when there is none.
    package mutating func pop(into chain: inout DescriptorChain, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        guard try hasAvailable() else { return false }
        let head = available.load(UInt16.self, at: 4 + 2 * Int(nextAvailable % size))
        try walk(from: head, into: &chain, memory: memory)
        nextAvailable &+= 1
        return true
    }

    /// Gives back the chain `pop` just took (a rate limit says it must wait): the next `pop` takes
    /// it again. Nothing of it was used.
    package mutating func undoPop() { nextAvailable &-= 1 }

    /// Follows the chain at `head`, through at most one indirect table, into `chain`.
    private func walk(from head: UInt16, into chain: inout DescriptorChain, memory: GuestMemoryMap) throws(VirtqueueError) {
        chain.removeAll()
        chain.head = head
        var table = descriptors
        var tableSize = Int(size)
        var inIndirect = false
        var index = head
        var visited = 0
        var total: UInt64 = 0
        while true {
            guard Int(index) < tableSize else { throw .descriptorIndexOutOfRange(index, tableSize: tableSize) }
            visited += 1
            guard visited <= tableSize else { throw .chainTooLong(limit: tableSize) }
            let offset = 16 * Int(index)
            let address = table.load(UInt64.self, at: offset)
            let length = table.load(UInt32.self, at: offset + 8)
            let flags = table.load(UInt16.self, at: offset + 12)
            let next = table.load(UInt16.self, at: offset + 14)
            if flags & 4 != 0 {  // VIRTQ_DESC_F_INDIRECT
                guard indirectAllowed else { throw .indirectNotNegotiated }
                guard !inIndirect, flags & 1 == 0 else { throw .nestedIndirect }
                guard length > 0, length % 16 == 0, length / 16 <= UInt32(chain.capacity) else { throw .badIndirectTable(length: length) }
                table = try Self.window(address, count: Int(length), alignment: 1, memory)
                tableSize = Int(length / 16)
                inIndirect = true
                index = 0
                visited = 0
                continue
            }
            total += UInt64(length)
            guard total <= UInt64(UInt32.max) else { throw .lengthOverflow }
            if length > 0 {
                guard (try? memory.translate(GuestAddress(address), length: UInt64(length))) != nil else {
                    throw .outsideGuestRAM(address: address, length: UInt64(length))
                }
            }
            let writable = flags & 2 != 0  // VIRTQ_DESC_F_WRITE
            guard chain.append(address: address, length: length, writable: writable) else {
                throw chain.count >= chain.capacity ? .chainTooLong(limit: chain.capacity) : .readableAfterWritable
            }
            guard flags & 1 != 0 else { return }  // VIRTQ_DESC_F_NEXT
            index = next
        }
    }

    /// Returns chain `head` to the driver, saying the device wrote `length` bytes into it.
    package mutating func putUsed(head: UInt16, length: UInt32) {
        stageUsed(head: head, length: length)
        publishUsed()
    }

    /// Fills the next used-ring entry without showing it to the driver yet: entries that belong
    /// together (a frame over several buffers) are published at once with `publishUsed`.
    package mutating func stageUsed(head: UInt16, length: UInt32) {
        let slot = 4 + 8 * Int(nextUsed % size)
        used.store(UInt32(head), at: slot)
        used.store(length, at: slot + 4)
        nextUsed &+= 1
    }

    /// Publishes every staged entry (the used index, with release ordering).
    package func publishUsed() {
        used.storeRelease16(nextUsed, at: 2)
    }

    /// Whether the driver wants an interrupt for what was used since the last one (EVENT_IDX's
    /// used_event, or the NO_INTERRUPT flag without it).
    package mutating func needsInterrupt() -> Bool {
        guard nextUsed != usedAtLastSignal else { return false }
        GuestWindow.fence()  // the used index is visible before the driver's event is read
        defer { usedAtLastSignal = nextUsed }
        if eventIndex {
            let event = available.load(UInt16.self, at: 4 + 2 * Int(size))
            return nextUsed &- event &- 1 < nextUsed &- usedAtLastSignal
        }
        return available.load(UInt16.self, at: 0) & 1 == 0  // VIRTQ_AVAIL_F_NO_INTERRUPT
    }

    /// Before the device waits for the next notification: with EVENT_IDX, asks for one when the
    /// driver passes the index the device reached. True if more chains arrived meanwhile.
    package func armNotification() throws(VirtqueueError) -> Bool {
        guard eventIndex else { return try hasAvailable() }
        used.storeRelease16(nextAvailable, at: 4 + 8 * Int(size))
        GuestWindow.fence()  // the event is visible before the available index is read again
        return try hasAvailable()
    }
}
