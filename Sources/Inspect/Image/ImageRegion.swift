import GuestMemory

/// One guest-physical range a region is mapped at.
package struct ImageRange: Sendable, Equatable {
    package var guestAddress: UInt64
    package var sizeInBytes: UInt64
    package var regionOffset: UInt64

    package init(guestAddress: UInt64, sizeInBytes: UInt64, regionOffset: UInt64) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.regionOffset = regionOffset
    }

    package var guestEnd: UInt64 { guestAddress + sizeInBytes }
}

/// A named region of an image: its size, where the guest sees it, and where its pages are.
package struct ImageRegion: Sendable {
    package var name: String
    package var sizeInBytes: UInt64
    /// Guest-physical placements; empty for a region the guest does not see at a known address
    /// (e.g. a QEMU ROM block from a migration stream).
    package var ranges: [ImageRange]
    /// Every page of the region, in order, as zero or stored spans.
    package var spans: [PageSpan]

    package init(name: String, sizeInBytes: UInt64, ranges: [ImageRange], spans: [PageSpan]) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.ranges = ranges
        self.spans = spans
    }

    package var pageCount: UInt64 { (sizeInBytes + 4095) / 4096 }

    /// Index of the span holding `page` (binary search).
    package func spanIndex(of page: PageIndex) -> Int? {
        var low = 0, high = spans.count
        while low < high {
            let middle = (low + high) / 2
            if spans[middle].pages.upperBound <= page { low = middle + 1 } else { high = middle }
        }
        return low < spans.count && spans[low].pages.contains(page) ? low : nil
    }
}
