import ArgumentParser
import ControlAPI
import Inspect

/// `engram mem stats IMAGE`: zero, duplicate and unique pages per region.
struct MemStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Count zero, duplicate and unique pages per region.",
        discussion: "duplicate: a non-zero page whose contents appeared earlier in the image (any region)."
    )

    @OptionGroup var options: ImageOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let image = try ImageLoader.open(options)
        let counts: [RegionPageCounts]
        do { counts = try PageStatistics.count(image) } catch { throw CommandFailure(error.description) }
        if json {
            let rows = counts.map { StatsRow(region: $0.name, pages: $0.pages, zero: $0.zero, duplicate: $0.duplicate, unique: $0.unique) }
            APICall.printAnswer(Array(try JSONCoding.makeEncoder().encode(rows)))
            return
        }
        let width = max(16, (counts.map(\.name.count).max() ?? 0) + 2)
        print(Self.pad("region", width) + ["pages", "zero", "duplicate", "unique"].map { Self.column($0) }.joined())
        var total = RegionPageCounts(name: "total")
        for row in counts {
            print(Self.line(row, width))
            total.pages += row.pages; total.zero += row.zero; total.duplicate += row.duplicate; total.unique += row.unique
        }
        if counts.count > 1 { print(Self.line(total, width)) }
    }

    private static func line(_ row: RegionPageCounts, _ width: Int) -> String {
        pad(row.name, width) + [row.pages, row.zero, row.duplicate, row.unique].map { column(String($0)) }.joined()
    }

    private static func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }

    private static func column(_ text: String) -> String { String(repeating: " ", count: max(0, 12 - text.count)) + text }

    /// One region in --json output.
    struct StatsRow: Encodable {
        var region: String
        var pages, zero, duplicate, unique: UInt64
    }
}
