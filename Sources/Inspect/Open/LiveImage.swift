/// One region of a running VM as its control API lists it.
package struct LiveRegionFile: Sendable {
    package var name: String
    package var sizeInBytes: UInt64
    /// The file to read: the region's own path, or /proc/PID/fd/N for a memfd.
    package var path: String
    package var ranges: [ImageRange]

    package init(name: String, sizeInBytes: UInt64, path: String, ranges: [ImageRange]) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.path = path
        self.ranges = ranges
    }
}

extension MemoryImage {
    /// A running VM's memory read through its region files, as they are now (the guest may be
    /// running: pause it for a consistent view). vCPU registers come from the control API.
    package static func live(source: String, regions: [LiveRegionFile], processors: [ProcessorState]) throws(InspectError) -> MemoryImage {
        var files: [ImageFile] = []
        var imageRegions: [ImageRegion] = []
        for (index, region) in regions.enumerated() {
            let file = try ImageFile(path: region.path)
            guard file.sizeInBytes >= region.sizeInBytes else {
                throw .damaged(path: region.path, reason: "region \(region.name) is \(region.sizeInBytes) bytes but its file has \(file.sizeInBytes)")
            }
            files.append(file)
            imageRegions.append(regionFromFile(file, index: index, name: region.name, sizeInBytes: region.sizeInBytes, ranges: region.ranges))
        }
        return MemoryImage(kind: "running Engram VM", source: source, files: files, regions: imageRegions, processors: processors)
    }
}
