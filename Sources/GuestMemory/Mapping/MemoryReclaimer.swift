import LinuxSystem

/// Something that must hear of a discard before it happens: a lazy restore still filling, which
/// would otherwise later install a stale snapshot page over the hole the guest gave back.
package protocol DiscardGate: AnyObject, Sendable {
    /// Called before bytes `range` of `region` are discarded; returns once nothing will install a
    /// page there any more except on the guest's demand, as zeros.
    func prepareDiscard(of region: GuestRegion, range: Range<UInt64>)
}

/// Gives guest pages back to the host on the guest's word (a balloon inflating, free pages
/// reported): through the regions' backings (`GuestRegion.discard`), after telling the gate, if
/// one is set, so a lazy restore never refills what the guest gave back.
package final class MemoryReclaimer: Sendable {
    private let gate = Locked<(any DiscardGate)?>(nil)

    package init() {}

    /// Sets (or clears) who hears of discards first.
    package func setGate(_ gate: (any DiscardGate)?) { self.gate.withLock { $0 = gate } }

    /// Discards the whole pages of guest-physical `[address, address+length)` in `memory`;
    /// returns the bytes given back. Throws, discarding nothing, if any part is not guest RAM.
    @discardableResult
    package func discard(_ address: GuestAddress, length: UInt64, in memory: GuestMemoryMap) throws(GuestMemoryError) -> UInt64 {
        let page = PageSize.bytes64
        let (end, overflow) = address.rawValue.addingReportingOverflow(length)
        guard !overflow else { throw .outOfRange(address: address, length: length) }
        // Rounded up with the overflow checked: an address in the last page of the address space
        // (a zero-length descriptor may name any) has no whole page after it.
        let down = address.rawValue / page * page
        let (first, pastTheTop) = down.addingReportingOverflow(down == address.rawValue ? 0 : page)
        let last = end / page * page
        guard !pastTheTop, first < last else { return 0 }
        let (region, offset) = try memory.translate(GuestAddress(first), length: last - first)
        let range = offset.rawValue..<offset.rawValue + (last - first)
        if let gate = gate.withLock({ $0 }) { gate.prepareDiscard(of: region, range: range) }
        let given = try region.discard(range)
        // The pages read as zeros now: the next diff and pre-copy pass carry them as such
        // (KVM's dirty log never sees a discard).
        region.hostWrites.mark(offset: range.lowerBound, count: Int(range.count))
        return given
    }
}
