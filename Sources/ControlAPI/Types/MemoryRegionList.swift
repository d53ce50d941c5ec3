/// The body of GET /vm/memory: `{"regions": [...]}`, an object so fields can be added later.
package struct MemoryRegionList: Codable, Sendable, Equatable {
    /// Every region, in the machine's order.
    package var regions: [MemoryRegionInfo]

    /// A list of `regions`.
    package init(regions: [MemoryRegionInfo]) { self.regions = regions }
}
