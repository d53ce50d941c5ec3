import ArgumentParser

/// `engram mem`: look at guest memory from outside, on files alone (no KVM, no VMM needed).
struct MemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mem",
        abstract: "Inspect guest memory: a running VM, a snapshot, a QEMU RAM file, migration stream or ELF core.",
        discussion: """
            IMAGE is detected from its contents: a running VM's control socket (engram run --api-socket), \
            an Engram snapshot (full or diff chain), a QEMU migration stream saved to a file \
            (migrate "exec:cat > FILE"), an ELF core (engram mem export, QEMU dump-guest-memory), or \
            else a raw RAM file such as QEMU's memory-backend-file, placed by --layout. \
            Every snapshot page read is checked against its CRC32C and a damaged one refused \
            (--no-verify shows it as stored). Addresses and lengths take decimal or 0x hex.
            """,
        subcommands: [
            MemRegionsCommand.self, MemReadCommand.self, MemSearchCommand.self, MemStatsCommand.self,
            MemDiffCommand.self, MemExportCommand.self,
        ]
    )
}

/// The IMAGE argument, how to place a raw RAM file, and whether to check a snapshot's pages,
/// shared by every `mem` subcommand.
struct ImageOptions: ParsableArguments {
    @Argument(help: "The memory image: a control socket, snapshot, QEMU RAM file or stream, or ELF core.") var image: String
    @Option(help: "Guest-physical placement of a raw RAM file: pc, q35, engram or flat.") var layout: LayoutArgument = .init(.pc)
    @Flag(help: ArgumentHelp(ImageOptions.noVerifyHelp)) var noVerify = false

    static let noVerifyHelp = "Show a snapshot's pages as stored, without checking each against its CRC32C (a damaged page is refused otherwise)."
}

/// A `--layout` value.
struct LayoutArgument: ExpressibleByArgument {
    let layout: RawLayoutName
    init(_ layout: RawLayoutName) { self.layout = layout }
    init?(argument: String) {
        guard let layout = RawLayoutName(rawValue: argument) else { return nil }
        self.layout = layout
    }
    var defaultValueDescription: String { layout.rawValue }
    static var allValueStrings: [String] { RawLayoutName.allCases.map(\.rawValue) }
}

/// The layouts by name (mirrors Inspect's RawLayout, which the CLI does not expose to the parser).
enum RawLayoutName: String, CaseIterable {
    case pc, q35, engram, flat
}

/// A number given as decimal or 0x hex.
struct AddressArgument: ExpressibleByArgument {
    let value: UInt64
    init?(argument: String) {
        let text = argument.replacingOccurrences(of: "_", with: "")
        if text.lowercased().hasPrefix("0x") {
            guard let value = UInt64(text.dropFirst(2), radix: 16) else { return nil }
            self.value = value
        } else {
            guard let value = UInt64(text) else { return nil }
            self.value = value
        }
    }
}
