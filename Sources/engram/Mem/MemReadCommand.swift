import ArgumentParser
import SystemPackage
import Inspect

/// `engram mem read IMAGE ADDRESS` or `--virt ADDRESS`: bytes of guest memory, as a hex dump or raw.
struct MemReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read guest memory at a guest-physical address, or a virtual one through the guest's page tables.",
        discussion: """
            --virt walks the guest's own page tables (4- or 5-level, PAE or 32-bit; 4 KiB, 2 MiB, 1 GiB pages) \
            from CR3: given with --cr3, or taken from the image's vCPU state (a snapshot, an ELF core's \
            notes, a paused running VM) — --vcpu picks which.
            """
    )

    @OptionGroup var options: ImageOptions
    @Argument(help: "Guest-physical address (omit with --virt).") var address: AddressArgument?
    @Option(help: "A guest virtual address to read, translated through the guest's page tables.") var virt: AddressArgument?
    @Option(help: "Bytes to read.") var length: AddressArgument = AddressArgument(argument: "256")!
    @Flag(help: "Write the bytes themselves to standard output instead of a hex dump.") var raw = false
    @Option(help: "With --virt: the page-table root to use instead of the image's.") var cr3: AddressArgument?
    @Option(help: "With --virt: the vCPU whose CR3 to use.") var vcpu: Int = 0
    @Option(help: "With --virt and --cr3: the paging mode, 4, 5, pae or 32 (default 4).") var paging: String?

    static let maximumLength: UInt64 = 1 << 30

    func validate() throws {
        guard (address == nil) != (virt == nil) else { throw ValidationError("give either a guest-physical ADDRESS or --virt ADDRESS") }
        guard length.value > 0, length.value <= Self.maximumLength else { throw ValidationError("--length must be 1 to \(Self.maximumLength) bytes") }
        if virt == nil, cr3 != nil || paging != nil { throw ValidationError("--cr3 and --paging go with --virt") }
        if let paging, !["4", "5", "pae", "32"].contains(paging) { throw ValidationError("--paging must be 4, 5, pae or 32") }
    }

    func run() throws {
        let image = try ImageLoader.open(options)
        let count = Int(length.value)
        let start: UInt64
        let bytes: [UInt8]
        do {
            if let virt {
                start = virt.value
                bytes = try walker(for: image).read(virtual: virt.value, count: count)
            } else {
                start = address!.value
                bytes = try image.readPhysical(start, count: count)
            }
        } catch let error as InspectError {
            throw CommandFailure(error.description)
        }
        if raw {
            _ = try FileDescriptor.standardOutput.writeAll(bytes)
        } else {
            for line in HexDump.lines(bytes, startingAt: start) { print(line) }
        }
    }

    /// The page-table walker for --virt: from --cr3, or from the image's vCPU state.
    private func walker(for image: MemoryImage) throws -> PageTableWalker {
        if let cr3 {
            let mode: PagingMode = switch paging {
            case "5": .fiveLevel
            case "pae": .pae
            case "32": .legacy32
            default: .fourLevel
            }
            return PageTableWalker(image: image, cr3: cr3.value, mode: mode)
        }
        guard !image.processors.isEmpty else {
            let hint = image.kind.contains("running") ? "pause the VM (engram ctl SOCKET pause) so its registers can be read, or give --cr3"
                : "this \(image.kind) carries no vCPU state; give --cr3"
            throw CommandFailure("no CR3 for \(image.source): \(hint)")
        }
        guard let processor = image.processors.first(where: { $0.id == vcpu }) else {
            throw CommandFailure("\(image.source) has no vCPU \(vcpu); it has \(image.processors.map { String($0.id) }.joined(separator: ", "))")
        }
        return PageTableWalker(image: image, processor: processor)
    }
}
