import ArgumentParser
import Inspect

/// `engram mem diff A B`: which pages differ between two images of the same machine.
struct MemDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "List the pages that differ between two images (same regions), as guest-physical ranges.",
        discussion: "Exit status 0 when the images are equal, 1 when pages differ (as cmp)."
    )

    @Argument(help: "The first image.") var first: String
    @Argument(help: "The second image.") var second: String
    @Option(help: "Guest-physical placement of raw RAM files: pc, q35, engram or flat.") var layout: LayoutArgument = .init(.pc)
    @Flag(help: ArgumentHelp(ImageOptions.noVerifyHelp)) var noVerify = false

    func run() throws {
        var firstOptions = try ImageOptions.parse([first])
        firstOptions.layout = layout
        firstOptions.noVerify = noVerify
        var secondOptions = try ImageOptions.parse([second])
        secondOptions.layout = layout
        secondOptions.noVerify = noVerify
        let (a, b) = (try ImageLoader.open(firstOptions), try ImageLoader.open(secondOptions))
        let difference: ImageDifference
        do { difference = try ImageDiff.compare(a, b) } catch { throw CommandFailure(error.description) }
        for run in difference.runs {
            let place = run.guestAddress.map { "\(HexDump.hexAddress($0))-\(HexDump.hexAddress($0 + UInt64(run.pages.count) * 4096 - 1))" } ?? "-"
            print("\(place) \(run.region) pages \(run.pages.lowerBound)-\(run.pages.upperBound.rawValue - 1) (\(run.pages.count))")
        }
        print("\(difference.differingPages) of \(difference.comparedPages) pages differ")
        if difference.differingPages > 0 { throw ExitCode(1) }
    }
}
