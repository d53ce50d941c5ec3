import ArgumentParser
import Inspect

/// `engram mem search IMAGE TEXT` or `--hex HEX`: every place the bytes occur.
struct MemSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find a byte string in guest memory; one line per hit: guest-physical address, region+offset.",
        discussion: "Exit status 0 when something was found, 1 when nothing was (as grep)."
    )

    @OptionGroup var options: ImageOptions
    @Argument(help: "The text to find (UTF-8).") var text: String?
    @Option(help: "The bytes to find, in hex (spaces allowed), e.g. 'de ad be ef'.") var hex: String?
    @Option(help: "Stop after this many hits.") var maxHits: Int = 1000

    func validate() throws {
        guard (text == nil) != (hex == nil) else { throw ValidationError("give either TEXT or --hex HEX") }
        guard maxHits > 0 else { throw ValidationError("--max-hits must be at least 1") }
        if let hex, HexPattern.bytes(hex) == nil {
            throw ValidationError("--hex must be pairs of hex digits, e.g. 'de ad be ef'")
        }
    }

    func run() throws {
        let pattern = text.map { Array($0.utf8) } ?? HexPattern.bytes(hex ?? "") ?? []
        let image = try ImageLoader.open(options)
        var hits = 0
        do {
            try PatternSearch(pattern: pattern).run(in: image) { hit in
                let place = hit.guestAddress.map(HexDump.hexAddress) ?? "-"
                print("\(place) \(image.regions[hit.region].name)+0x\(String(hit.offset, radix: 16))")
                hits += 1
                return hits < maxHits
            }
        } catch {
            throw CommandFailure(error.description)
        }
        if hits == 0 { throw ExitCode(1) }
    }
}

/// Hex digits, optionally spaced, as bytes.
enum HexPattern {
    static func bytes(_ text: String) -> [UInt8]? {
        let digits = text.filter { !$0.isWhitespace }.lowercased().replacingOccurrences(of: "0x", with: "")
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
