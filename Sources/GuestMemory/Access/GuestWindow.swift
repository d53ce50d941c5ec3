import CLinux

/// A stretch of guest RAM resolved once and then read and written many times: a virtqueue's
/// descriptor table or one of its rings.
///
/// Values are copied in and out as little-endian integers (x86 is little-endian, as virtio 1.x
/// is); nothing in Swift ever points into guest memory. Every access is checked against the
/// window's length, so a bad offset is a programming error in the caller, never a stray access.
/// The 16-bit ordered accesses give the acquire/release pairing the virtio ring protocol needs.
/// Every store is recorded in the region's `hostWrites`.
@safe
package struct GuestWindow: @unchecked Sendable {
    /// Keeps the mapping alive while the window exists.
    private let region: GuestRegion
    private let base: UnsafeMutableRawPointer
    /// Where the window starts in its region, for the region's log of host writes.
    private let regionOffset: UInt64
    /// Where the window starts in guest-physical memory.
    package let guestAddress: GuestAddress
    /// Its length in bytes.
    package let count: Int

    init(region: GuestRegion, base: UnsafeMutableRawPointer, regionOffset: RegionOffset, guestAddress: GuestAddress, count: Int) {
        self.region = region
        unsafe self.base = base
        self.regionOffset = regionOffset.rawValue
        self.guestAddress = guestAddress
        self.count = count
    }

    // Concrete per width, not generic: other targets call these on every ring and descriptor
    // access, and a generic function is not specialized across targets here, so each call cost
    // a runtime metadata lookup and an unspecialized load (about 5% of a virtio-net I/O thread).
    /// The integer of that width at `offset`.
    package func load(_ type: UInt8.Type, at offset: Int) -> UInt8 { read(type, offset) }
    package func load(_ type: UInt16.Type, at offset: Int) -> UInt16 { read(type, offset) }
    package func load(_ type: UInt32.Type, at offset: Int) -> UInt32 { read(type, offset) }
    package func load(_ type: UInt64.Type, at offset: Int) -> UInt64 { read(type, offset) }
    /// Writes `value` at `offset`.
    package func store(_ value: UInt8, at offset: Int) { write(value, offset) }
    package func store(_ value: UInt16, at offset: Int) { write(value, offset) }
    package func store(_ value: UInt32, at offset: Int) { write(value, offset) }
    package func store(_ value: UInt64, at offset: Int) { write(value, offset) }

    @inline(__always)
    private func read<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
        precondition(offset >= 0 && offset <= count - MemoryLayout<T>.size, "guest window read outside its \(count) bytes")
        // SAFETY: checked to lie inside the window, which lies inside its region's mapping.
        return T(littleEndian: unsafe (base + offset).loadUnaligned(as: T.self))
    }

    @inline(__always)
    private func write<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
        precondition(offset >= 0 && offset <= count - MemoryLayout<T>.size, "guest window write outside its \(count) bytes")
        // SAFETY: checked to lie inside the window, which lies inside its region's mapping.
        unsafe (base + offset).storeBytes(of: value.littleEndian, as: T.self)
        region.hostWrites.mark(offset: regionOffset + UInt64(offset), count: MemoryLayout<T>.size)
    }

    /// The 16-bit value at `offset` (2-aligned), read before anything the guest wrote before it.
    @inline(__always)
    package func loadAcquire16(at offset: Int) -> UInt16 {
        precondition(offset >= 0 && offset <= count - 2 && offset % 2 == 0, "guest window read outside its \(count) bytes")
        // SAFETY: an aligned 2-byte word inside the window.
        return unsafe clinux_load_acquire_u16(base + offset)
    }

    /// Writes the 16-bit `value` at `offset` (2-aligned) after everything written before it.
    @inline(__always)
    package func storeRelease16(_ value: UInt16, at offset: Int) {
        precondition(offset >= 0 && offset <= count - 2 && offset % 2 == 0, "guest window write outside its \(count) bytes")
        // SAFETY: an aligned 2-byte word inside the window.
        unsafe clinux_store_release_u16(base + offset, value)
        region.hostWrites.mark(offset: regionOffset + UInt64(offset), count: 2)
    }

    /// A full barrier: earlier writes are visible to the guest before later reads are made.
    @inline(__always)
    package static func fence() { clinux_fence_seq_cst() }
}

extension GuestMemoryMap {
    /// A window onto `[address, address+count)`, which must lie in one mapping.
    package func window(at address: GuestAddress, count: Int) throws(GuestMemoryError) -> GuestWindow {
        guard count > 0 else { throw .outOfRange(address: address, length: 0) }
        let (region, offset) = try translate(address, length: UInt64(count))
        guard let base = unsafe region.pointer(at: offset, count: count) else {
            throw .outOfRange(address: address, length: UInt64(count))
        }
        return unsafe GuestWindow(region: region, base: base, regionOffset: offset, guestAddress: address, count: count)
    }
}
