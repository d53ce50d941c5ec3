import ArgumentParser
import Inspect

/// `engram mem export IMAGE OUT --format raw|elf`: guest memory as a flat file or an ELF core.
struct MemExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write guest memory as a flat raw image (file offset = guest-physical address) or an ELF core.",
        discussion: """
            elf follows QEMU's dump-guest-memory layout (PT_LOAD per guest-physical range, NT_PRSTATUS and \
            QEMU CPU-state notes), which crash and volatility3 read. Output files are mode 0600, sparse, \
            and appear whole or not at all.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case raw, elf }

    @OptionGroup var options: ImageOptions
    @Argument(help: "The file to write.") var output: String
    @Option(help: "raw or elf.") var format: Format

    func run() throws {
        let image = try ImageLoader.open(options)
        do {
            switch format {
            case .raw:
                let summary = try RawExporter.write(image, to: output)
                print("wrote \(output): \(summary.sizeInBytes) bytes of guest-physical memory, \(summary.writtenBytes) of them non-zero")
            case .elf:
                let summary = try ELFCoreWriter.write(image, to: output)
                print("wrote \(output): ELF core, \(summary)")
            }
        } catch {
            throw CommandFailure(error.description)
        }
    }
}
