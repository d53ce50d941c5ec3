import GuestMemory
import LinuxSystem
extension MemoryImage {
    /// A file holding one region's bytes from offset 0: a QEMU `memory-backend-file` RAM file, a
    /// live Engram region file, or a raw export. Holes the file system reports are zero spans.
    package static func raw(path: String, regionName: String = "ram", layout: RawLayout = .pc, kind: String? = nil) throws(InspectError) -> MemoryImage {
        let file = try ImageFile(path: path)
        guard file.sizeInBytes > 0 else { throw .unknownFormat(path: path, reason: "it is empty") }
        let region = regionFromFile(file, index: 0, name: regionName, ranges: layout.ranges(forSize: file.sizeInBytes))
        return MemoryImage(kind: kind ?? "raw RAM file (\(layout.rawValue) layout)", source: path, files: [file], regions: [region])
    }

    /// A region whose bytes are file `index` from offset 0, with the file's holes as zero spans.
    package static func regionFromFile(_ file: ImageFile, index: Int, name: String, sizeInBytes: UInt64? = nil, ranges: [ImageRange]) -> ImageRegion {
        let size = sizeInBytes ?? file.sizeInBytes
        let pageCount = (size + PageSize.bytes64 - 1) / PageSize.bytes64
        let stored = min(size, file.sizeInBytes)
        var builder = PageSpanBuilder()
        for data in file.dataRanges(in: 0..<stored) {
            let first = data.lowerBound / PageSize.bytes64
            let end = min((data.upperBound + PageSize.bytes64 - 1) / PageSize.bytes64, stored / PageSize.bytes64)
            builder.append(PageIndex(first)..<PageIndex(max(first, end)), file: index, fileOffset: first * PageSize.bytes64)
        }
        return ImageRegion(name: name, sizeInBytes: size, ranges: ranges, spans: builder.finished(pageCount: pageCount))
    }
}
