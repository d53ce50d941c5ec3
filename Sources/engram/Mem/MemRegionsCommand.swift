import ArgumentParser
import Inspect

/// `engram mem regions IMAGE`: what the image is, and its regions with guest-physical ranges.
struct MemRegionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "regions", abstract: "List an image's regions and their guest-physical ranges.")

    @OptionGroup var options: ImageOptions

    func run() throws {
        let image = try ImageLoader.open(options)
        print("\(image.source): \(image.kind)")
        for region in image.regions {
            let stored = region.spans.filter { $0.file != nil }.reduce(UInt64(0)) { $0 + UInt64($1.pages.count) }
            let ranges = region.ranges.isEmpty ? "not placed in guest-physical memory"
                : "guest " + region.ranges.map { "\(HexDump.hexAddress($0.guestAddress))-\(HexDump.hexAddress($0.guestEnd - 1))" }.joined(separator: " ")
            print("  \(region.name): \(MemFormat.size(region.sizeInBytes)), \(stored) of \(region.pageCount) pages stored, \(ranges)")
        }
        for processor in image.processors {
            print("  vCPU \(processor.id): cr3 \(HexDump.hexAddress(processor.cr3)), cr4 \(HexDump.hexAddress(processor.cr4)), paging \(PagingMode(processor: processor).displayName)")
        }
    }
}

/// Numbers for people.
enum MemFormat {
    static func size(_ bytes: UInt64) -> String {
        if bytes >= 1 << 30, bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}
