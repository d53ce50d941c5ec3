import Synchronization

/// Dispatches port I/O to devices by port range: built once, then immutable and lock-free.
package final class PortIOBus: Sendable {
    /// Collects devices before the vCPUs start.
    package final class Builder {
        private var entries: [(ports: ClosedRange<UInt16>, device: any PortIODevice)] = []

        package init() {}

        /// Claims `ports` for `device`; overlapping claims are refused.
        package func register(_ device: any PortIODevice, ports: ClosedRange<UInt16>) throws(DeviceError) {
            if let clash = entries.first(where: { $0.ports.overlaps(ports) }) {
                throw .portConflict(ports: ports, existing: clash.ports)
            }
            entries.append((ports, device))
        }

        /// The frozen bus.
        package func build() -> PortIOBus { PortIOBus(entries.sorted { $0.ports.lowerBound < $1.ports.lowerBound }) }
    }

    private let lowerBounds: [UInt16]
    private let upperBounds: [UInt16]
    private let devices: [any PortIODevice]
    private let unclaimed = Atomic<Int>(0)

    private init(_ entries: [(ports: ClosedRange<UInt16>, device: any PortIODevice)]) {
        lowerBounds = entries.map(\.ports.lowerBound)
        upperBounds = entries.map(\.ports.upperBound)
        devices = entries.map(\.device)
    }

    /// IN from `port`: the owning device's answer, or all ones of the access size when no device is there.
    package func read(port: UInt16, size: Int) -> UInt32 {
        guard let index = deviceIndex(for: port) else {
            unclaimed.add(1, ordering: .relaxed)
            return size >= 4 ? UInt32.max : (UInt32(1) << (8 * UInt32(size))) - 1
        }
        return devices[index].read(port: port, size: size)
    }

    /// OUT to `port`; ignored when no device is there.
    package func write(port: UInt16, size: Int, value: UInt32) {
        guard let index = deviceIndex(for: port) else {
            unclaimed.add(1, ordering: .relaxed)
            return
        }
        devices[index].write(port: port, size: size, value: value)
    }

    /// How many accesses hit no device.
    package var unclaimedAccessCount: Int { unclaimed.load(ordering: .relaxed) }

    /// Binary search over the sorted ranges: no allocation on the vCPU's exit path.
    private func deviceIndex(for port: UInt16) -> Int? {
        var low = 0, high = lowerBounds.count
        while low < high {
            let middle = (low + high) / 2
            if lowerBounds[middle] <= port { low = middle + 1 } else { high = middle }
        }
        let candidate = low - 1
        guard candidate >= 0, port <= upperBounds[candidate] else { return nil }
        return candidate
    }
}
