import Synchronization

/// Dispatches MMIO exits to devices by address window: built before the vCPUs start, then
/// immutable and lock-free. Windows are few (one per virtio device), so lookup is a scan of a
/// short sorted array. An address no device claims reads as all ones and ignores writes; such
/// accesses are counted.
package final class MMIOBus: Sendable {
    /// A device's window: `[base, base+size)`.
    package struct Window: Sendable, Equatable {
        package let base: UInt64
        package let size: UInt64
        package init(base: UInt64, size: UInt64) {
            self.base = base
            self.size = size
        }
        package func contains(_ address: UInt64) -> Bool { address >= base && address - base < size }
        package func overlaps(_ other: Window) -> Bool { base < other.base + other.size && other.base < base + size }
    }

    private let windows: [Window]
    private let devices: [any MMIODevice]
    private let unclaimedAccesses = Atomic<Int>(0)

    /// A bus over `claims`; refuses windows that overlap, naming both.
    package init(claims: [(window: Window, name: String, device: any MMIODevice)]) throws(DeviceError) {
        let sorted = claims.sorted { $0.window.base < $1.window.base }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.window.overlaps(b.window) {
            throw .windowConflict(device: b.name, base: b.window.base, existingDevice: a.name, existingBase: a.window.base)
        }
        windows = sorted.map(\.window)
        devices = sorted.map(\.device)
    }

    /// A bus with no devices.
    package convenience init() {
        // An empty list cannot overlap.
        try! self.init(claims: [])
    }

    /// A read of `size` bytes at guest-physical `address`: the owning device's answer, or all ones.
    package func read(address: UInt64, size: Int) -> UInt64 {
        for (index, window) in windows.enumerated() where window.contains(address) {
            return devices[index].read(offset: address - window.base, size: size)
        }
        unclaimedAccesses.add(1, ordering: .relaxed)
        return size >= 8 ? .max : (1 << (8 * UInt64(max(size, 0)))) - 1
    }

    /// A write of `size` bytes of `value` at guest-physical `address`; ignored when no device claims it.
    package func write(address: UInt64, size: Int, value: UInt64) {
        for (index, window) in windows.enumerated() where window.contains(address) {
            devices[index].write(offset: address - window.base, size: size, value: value)
            return
        }
        unclaimedAccesses.add(1, ordering: .relaxed)
    }

    /// How many accesses reached no device since the bus was built.
    package var unclaimedAccessCount: Int { unclaimedAccesses.load(ordering: .relaxed) }
}
