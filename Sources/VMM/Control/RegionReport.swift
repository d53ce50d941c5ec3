import ControlAPI
import Glibc
import GuestMemory

/// Describes guest memory regions the same way on the terminal and through the API.
package enum RegionReport {
    package static func regions(of memory: GuestMemoryMap) -> [MemoryRegionInfo] {
        memory.regions.map { region in
            let ranges = memory.placements(of: region).map {
                GuestRangeInfo(guestAddress: $0.guestAddress.rawValue, sizeInBytes: $0.sizeInBytes, regionOffset: $0.regionOffset.rawValue)
            }
            // A memfd has no name, but its owner can open it through /proc.
            let descriptorPath = region.path == nil ? region.fileDescriptor.map { "/proc/\(getpid())/fd/\($0)" } : nil
            var info = MemoryRegionInfo(name: region.name, sizeInBytes: region.sizeInBytes, backing: region.backing.kindName,
                                        path: region.path, ranges: ranges, descriptorPath: descriptorPath)
            if case .forkCopyOnWrite(let base) = region.backing { info.forkBase = base }
            return info
        }
    }

    /// One line per region: name, size, backing, guest-physical ranges.
    package static func lines(of memory: GuestMemoryMap) -> [String] {
        regions(of: memory).map { info in
            let ranges = info.ranges.map { "0x\(hex($0.guestAddress))-0x\(hex($0.guestAddress + $0.sizeInBytes - 1))" }
            let file = info.path.map { " \($0)" } ?? ""
            return "region \(info.name): \(info.sizeInBytes >> 20) MiB, \(info.backing)\(file), guest \(ranges.joined(separator: " "))"
        }
    }

    private static func hex(_ value: UInt64) -> String { String(value, radix: 16) }
}
