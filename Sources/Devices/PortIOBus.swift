import Synchronization

/// Dispatches port I/O to devices by port range: built once before the vCPUs start, then
/// immutable and lock-free, so every vCPU thread can use it at once.
///
/// Lookup is a binary search over the claimed ranges, sorted by first port; nothing is allocated
/// per access. A port no device claims reads as all ones of the access size (what an empty ISA bus
/// returns) and ignores writes; such accesses are counted.
package final class PortIOBus: Sendable {
    private let firstPorts: [UInt16]
    private let lastPorts: [UInt16]
    private let devices: [any PortIODevice]
    private let unclaimedAccesses = Atomic<Int>(0)

    /// A bus over `claims`, which must not overlap (the builder checks).
    init(claims: [(ports: ClosedRange<UInt16>, device: any PortIODevice)]) {
        let sorted = claims.sorted { $0.ports.lowerBound < $1.ports.lowerBound }
        firstPorts = sorted.map(\.ports.lowerBound)
        lastPorts = sorted.map(\.ports.upperBound)
        devices = sorted.map(\.device)
    }

    /// An IN of `size` bytes (1, 2 or 4) from `port`: the owning device's answer, or all ones
    /// of the access size when no device claims the port.
    package func read(port: UInt16, size: Int) -> UInt32 {
        guard let index = deviceIndex(for: port) else {
            unclaimedAccesses.add(1, ordering: .relaxed)
            return Self.allOnes(size: size)
        }
        return devices[index].read(port: port, size: size)
    }

    /// An OUT of `size` bytes (1, 2 or 4) of `value` to `port`; ignored when no device claims it.
    package func write(port: UInt16, size: Int, value: UInt32) {
        guard let index = deviceIndex(for: port) else {
            unclaimedAccesses.add(1, ordering: .relaxed)
            return
        }
        devices[index].write(port: port, size: size, value: value)
    }

    /// How many reads and writes reached no device since the bus was built.
    package var unclaimedAccessCount: Int { unclaimedAccesses.load(ordering: .relaxed) }

    /// The value an unclaimed read returns: 0xFF, 0xFFFF or 0xFFFFFFFF for 1, 2 or 4 bytes.
    static func allOnes(size: Int) -> UInt32 {
        size >= 4 ? .max : (1 << (8 * UInt32(max(size, 0)))) - 1
    }

    /// The index of the range holding `port`: the last range starting at or below it, if it reaches it.
    private func deviceIndex(for port: UInt16) -> Int? {
        var low = 0
        var high = firstPorts.count
        while low < high {
            let middle = (low + high) / 2
            if firstPorts[middle] <= port { low = middle + 1 } else { high = middle }
        }
        guard low > 0, port <= lastPorts[low - 1] else { return nil }
        return low - 1
    }
}
