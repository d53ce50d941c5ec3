/// What the guest last reported on the balloon's statistics queue (virtio 1.x, 5.5.6.3): each
/// value as the driver sent it, nil for tags it did not send. Memory amounts are bytes.
package struct BalloonStatistics: Sendable, Equatable {
    package var swapIn: UInt64?
    package var swapOut: UInt64?
    package var majorFaults: UInt64?
    package var minorFaults: UInt64?
    package var freeMemory: UInt64?
    package var totalMemory: UInt64?
    package var availableMemory: UInt64?
    package var diskCaches: UInt64?
    package var hugetlbAllocations: UInt64?
    package var hugetlbFailures: UInt64?
    /// Updates received since the device started.
    package var updates: UInt64 = 0

    package init() {}

    /// Bytes per entry: a 16-bit tag and a 64-bit value, packed, little-endian.
    static let entryBytes = 10

    /// Records one entry; unknown tags are ignored, as the specification asks.
    mutating func record(tag: UInt16, value: UInt64) {
        switch tag {
        case 0: swapIn = value
        case 1: swapOut = value
        case 2: majorFaults = value
        case 3: minorFaults = value
        case 4: freeMemory = value
        case 5: totalMemory = value
        case 6: availableMemory = value
        case 7: diskCaches = value
        case 8: hugetlbAllocations = value
        case 9: hugetlbFailures = value
        default: break
        }
    }

    /// Reads the entries in `bytes[0..<count]` (a trailing partial entry is ignored).
    mutating func record(_ bytes: [UInt8], count: Int) {
        var offset = 0
        while offset + Self.entryBytes <= count {
            let tag = UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[offset + 2 + byte]) << (8 * UInt64(byte)) }
            record(tag: tag, value: value)
            offset += Self.entryBytes
        }
        updates += 1
    }
}
