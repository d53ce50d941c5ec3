import GuestMemory
import LinuxSystem
extension MemoryImage {
    /// An ELF64 core of guest memory — QEMU's `dump-guest-memory` (ELF format, no paging) or
    /// Engram's own export: one region per PT_LOAD with bytes in the file, placed at p_paddr,
    /// and the vCPUs' control registers from the "QEMU" notes. Every offset and count is checked
    /// against the file before it is used, so a damaged core is refused, never misread.
    package static func elfCore(path: String) throws(InspectError) -> MemoryImage {
        let file = try ImageFile(path: path)
        let header = try ELFCoreHeader(file: file)
        var regions: [ImageRegion] = []
        var noteSegments: [(offset: UInt64, size: UInt64)] = []
        for index in 0..<header.programHeaderCount {
            let segment = try header.programHeader(index, of: file)
            switch segment.type {
            case ELFFormat.segmentLoad where segment.fileSize > 0:
                regions.append(loadRegion(segment, file: file, name: "load\(regions.count)"))
            case ELFFormat.segmentNote where segment.fileSize > 0:
                noteSegments.append((segment.offset, segment.fileSize))
            default:
                continue
            }
        }
        guard !regions.isEmpty else {
            throw .damaged(path: path, reason: "none of its \(header.programHeaderCount) program headers is a PT_LOAD with bytes in the file")
        }
        var processors: [ProcessorState] = []
        for segment in noteSegments {
            let bytes = try file.read(count: Int(segment.size), at: segment.offset)
            let notes = try ELFNoteList(bytes: bytes, path: path)
            processors += try ELFCoreProcessors.decode(notes, machine: header.machine, path: path, firstID: processors.count)
        }
        let kind = "ELF core (\(regions.count) PT_LOAD, \(processors.count) vCPU\(processors.count == 1 ? "" : "s"))"
        return MemoryImage(kind: kind, source: path, files: [file], regions: regions, processors: processors)
    }

    /// The region of one checked PT_LOAD: page i of the region is at p_offset + i * 4096 in the
    /// file (p_offset need not be page aligned: QEMU packs loads right after its notes). Pages
    /// the file system reports as holes, and memory past p_filesz, are zero spans.
    private static func loadRegion(_ segment: ELFProgramHeader, file: ImageFile, name: String) -> ImageRegion {
        // A page only partly in the file cannot be a span (the rest would read the next load),
        // so a load whose file bytes end mid-page keeps only those bytes.
        let size = segment.fileSize % PageSize.bytes64 == 0 ? segment.memorySize : segment.fileSize
        let pageCount = (size + PageSize.bytes64 - 1) / PageSize.bytes64
        var builder = PageSpanBuilder()
        var nextPage: UInt64 = 0
        for data in file.dataRanges(in: segment.offset..<segment.offset + segment.fileSize) {
            let first = max(nextPage, (data.lowerBound - segment.offset) / PageSize.bytes64)
            let end = (data.upperBound - segment.offset + PageSize.bytes64 - 1) / PageSize.bytes64
            guard first < end else { continue }
            builder.append(PageIndex(first)..<PageIndex(end), file: 0, fileOffset: segment.offset + first * PageSize.bytes64)
            nextPage = end
        }
        let range = ImageRange(guestAddress: segment.physicalAddress, sizeInBytes: size, regionOffset: 0)
        return ImageRegion(name: name, sizeInBytes: size, ranges: [range], spans: builder.finished(pageCount: pageCount))
    }
}
