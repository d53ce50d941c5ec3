import LinuxSystem
import GuestMemory

/// What an ELF core export wrote.
package struct ELFCoreSummary: Sendable, Equatable {
    /// The core's apparent size.
    package var sizeInBytes: UInt64
    /// Memory bytes actually written; zero pages stay holes.
    package var writtenBytes: UInt64
    package var loads: [ELFCoreLoad]
    /// Notes in the PT_NOTE segment (two per vCPU).
    package var notes: Int
}

/// Writes an image as an ELF64 core in the layout of QEMU's `dump-guest-memory` (no paging),
/// so crash, gdb, volatility3 and elf2dmp read Engram's memory as they read QEMU's. Unlike
/// QEMU, loads start on page boundaries and zero pages are never written, so a mostly idle
/// guest's core costs disk only for the memory it uses.
package enum ELFCoreWriter {
    /// Bytes read and scanned per step.
    package static let chunkBytes = 4 << 20

    package static func write(_ image: MemoryImage, to path: String) throws(InspectError) -> ELFCoreSummary {
        let machine = machine(for: image.processors)
        let notes = ELFCoreNotes.section(for: image.processors, machine: machine)
        let layout = try ELFCoreLayout(image: image, noteBytes: notes.bytes.count)
        let output = try ExportFile(path: path)
        try output.setSize(layout.fileSize)
        try output.write(layout.headers(machine: machine, noteBytes: notes.bytes.count) + notes.bytes, at: 0)

        // One buffer for the whole export, lent to the calls below.
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        var written: UInt64 = 0
        for (load, pieces) in zip(layout.loads, layout.pieces) {
            for piece in pieces {
                let fileOffset = load.fileOffset + (piece.guestAddress - load.guestAddress)
                written += try copy(piece, of: image, to: output, at: fileOffset, buffer: &buffer)
            }
        }
        try output.commit()
        return ELFCoreSummary(sizeInBytes: layout.fileSize, writtenBytes: written, loads: layout.loads, notes: notes.count)
    }

    /// EM_X86_64 unless the first vCPU is known to be outside long mode: QEMU writes EM_386 then,
    /// and readers (crash, Engram's) take the machine as the sign of long mode, as EFER is not
    /// in the notes.
    static func machine(for processors: [ProcessorState]) -> UInt16 {
        guard let first = processors.first else { return ELFFormat.machineX86_64 }
        switch PagingMode(processor: first) {
        case .fourLevel, .fiveLevel: return ELFFormat.machineX86_64
        case .none, .legacy32, .pae: return ELFFormat.machine386
        }
    }

    /// Copies one piece: zero spans are skipped without reading; stored spans are read a chunk
    /// at a time and only their non-zero pages written. Returns the bytes written.
    private static func copy(_ piece: ELFCoreLayout.Piece, of image: MemoryImage, to output: ExportFile, at fileOffset: UInt64,
                             buffer: inout [UInt8]) throws(InspectError) -> UInt64 {
        let region = image.regions[piece.region]
        let pageSize = PageSize.bytes64
        let end = piece.regionOffset + piece.sizeInBytes
        var position = piece.regionOffset
        var written: UInt64 = 0
        while position < end {
            guard let index = region.spanIndex(of: PageIndex(position / pageSize)) else {
                throw .damaged(path: image.source, reason: "region \(region.name) has no entry for page \(position / pageSize)")
            }
            let span = region.spans[index]
            let spanEnd = min(end, span.pages.upperBound.rawValue * pageSize)
            guard span.file != nil else {
                position = spanEnd
                continue
            }
            let count = Int(min(UInt64(buffer.count), spanEnd - position))
            try buffer.withMutableBytes { (all) throws(InspectError) in
                try all.withBytes(in: 0..<count) { (part) throws(InspectError) in
                    try image.read(region: piece.region, at: position, into: &part)
                    written += try writeNonZeroPages(part.bytes, to: output, at: fileOffset + (position - piece.regionOffset))
                }
            }
            position += UInt64(count)
        }
        return written
    }

    /// Writes the file pages of `bytes` (placed at `offset`) that are not all zero, joining
    /// neighbours into one write; zero pages are left to the hole ftruncate made.
    private static func writeNonZeroPages(_ bytes: RawSpan, to output: ExportFile, at offset: UInt64) throws(InspectError) -> UInt64 {
        let pageSize = PageSize.bytes64
        var written: UInt64 = 0
        var runStart: Int? = nil
        var start = 0
        while start < bytes.byteCount {
            // Pages follow the file's page boundaries, so holes line up with file system blocks.
            let end = min(bytes.byteCount, start + Int(pageSize - (offset + UInt64(start)) % pageSize))
            let isZero = ZeroPageScan.isZero(bytes.extracting(start..<end))
            if !isZero, runStart == nil { runStart = start }
            if isZero, let first = runStart {
                written += try writeRun(bytes, first..<start, to: output, at: offset)
                runStart = nil
            }
            start = end
        }
        if let first = runStart { written += try writeRun(bytes, first..<bytes.byteCount, to: output, at: offset) }
        return written
    }

    /// Writes `run` of `bytes` (placed at `offset`) and returns its length.
    private static func writeRun(_ bytes: RawSpan, _ run: Range<Int>, to output: ExportFile, at offset: UInt64) throws(InspectError) -> UInt64 {
        try output.write(bytes.extracting(run), at: offset + UInt64(run.lowerBound))
        return UInt64(run.count)
    }
}
