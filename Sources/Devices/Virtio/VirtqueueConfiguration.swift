/// One queue's transport registers as the driver set them: its size, where its three parts are,
/// and whether it is enabled. Saved in snapshots with the indices the device reached.
package struct VirtqueueConfiguration: Sendable, Equatable, Codable {
    package var size: UInt16
    package var ready = false
    package var descriptorTable: UInt64 = 0
    package var availableRing: UInt64 = 0
    package var usedRing: UInt64 = 0

    package init(size: UInt16) { self.size = size }
}
