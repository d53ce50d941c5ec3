/// The per-vCPU notes of a QEMU `dump-guest-memory` core, which crash, gdb and QEMU's own
/// elf2dmp read: an `NT_PRSTATUS` named "CORE" (the kernel's `elf_prstatus`) and a note named
/// "QEMU" holding `QEMUCPUState`. Layouts follow QEMU's target/i386/arch_dump.c.
enum ELFCoreNotes {
    /// `QEMUCPUState` version 1: version, size, 16 general registers, rip, rflags, 10 segments
    /// of 24 bytes (cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt), cr[0...4], and since QEMU 7.1
    /// kernel_gs_base — 0x1b8 bytes; earlier QEMUs end after cr[4] at 0x1b0.
    enum QEMUState {
        static let version: UInt32 = 1
        static let size = 0x1B8
        /// The shortest state that still holds cr[4] (QEMU before kernel_gs_base was added).
        static let minimumSize = 0x1B0
        static let versionOffset = 0
        static let sizeOffset = 4
        static let rip = 136
        /// `flags` of the cs segment: QEMU's descriptor flags, where bit 21 is the L (64-bit) bit.
        static let codeSegmentFlags = 160
        static let longModeCodeFlag: UInt32 = 1 << 21
        static let cr0 = 392
        static let cr3 = 416
        static let cr4 = 424
    }

    /// x86-64 `elf_prstatus`: pr_pid at 32, `user_regs_struct` (27 words) at 112, rip its 17th.
    enum PRStatus64 {
        static let size = 336
        static let pid = 32
        static let rip = 112 + 16 * 8
    }

    /// i386 `elf_prstatus`, which QEMU writes (in an ELF64 core) for a guest not in long mode:
    /// pr_pid at 24, `user_regs_struct` at 72, eip 48 bytes into it.
    enum PRStatus32 {
        static let size = 144
        static let pid = 24
        static let eip = 72 + 48
    }

    static let coreName = "CORE"
    static let qemuName = "QEMU"

    /// The note section for `processors`, in QEMU's order: every NT_PRSTATUS, then every QEMU
    /// note. `machine` picks the prstatus layout as QEMU does (EM_386: the i386 one).
    static func section(for processors: [ProcessorState], machine: UInt16) -> (bytes: [UInt8], count: Int) {
        var bytes: [UInt8] = []
        for processor in processors {
            bytes += note(name: coreName, type: ELFFormat.notePRStatus, descriptor: processorStatus(processor, machine: machine))
        }
        for processor in processors {
            bytes += note(name: qemuName, type: 0, descriptor: qemuState(processor))
        }
        return (bytes, processors.count * 2)
    }

    /// One note: header, NUL-terminated name and descriptor, each padded to 4 bytes.
    static func note(name: String, type: UInt32, descriptor: [UInt8]) -> [UInt8] {
        let nameBytes = Array(name.utf8) + [0]
        let nameEnd = ELFFormat.noteHeaderSize + ELFFormat.noteAligned(nameBytes.count)
        var builder = ELFByteBuilder(count: nameEnd + ELFFormat.noteAligned(descriptor.count))
        builder.put(UInt32(nameBytes.count), at: 0)
        builder.put(UInt32(descriptor.count), at: 4)
        builder.put(type, at: 8)
        builder.put(nameBytes, at: ELFFormat.noteHeaderSize)
        builder.put(descriptor, at: nameEnd)
        return builder.bytes
    }

    /// `elf_prstatus` with pr_pid = vCPU id + 1 (QEMU numbers CPUs from 1 there) and the
    /// registers Engram knows; the rest stay zero.
    static func processorStatus(_ processor: ProcessorState, machine: UInt16) -> [UInt8] {
        let pid = UInt32(truncatingIfNeeded: processor.id + 1)
        if machine == ELFFormat.machine386 {
            var builder = ELFByteBuilder(count: PRStatus32.size)
            builder.put(pid, at: PRStatus32.pid)
            builder.put(UInt32(truncatingIfNeeded: processor.rip), at: PRStatus32.eip)
            return builder.bytes
        }
        var builder = ELFByteBuilder(count: PRStatus64.size)
        builder.put(pid, at: PRStatus64.pid)
        builder.put(processor.rip, at: PRStatus64.rip)
        return builder.bytes
    }

    /// `QEMUCPUState` with rip, cr0, cr3 and cr4; segments and other registers zero.
    static func qemuState(_ processor: ProcessorState) -> [UInt8] {
        var builder = ELFByteBuilder(count: QEMUState.size)
        builder.put(QEMUState.version, at: QEMUState.versionOffset)
        builder.put(UInt32(QEMUState.size), at: QEMUState.sizeOffset)
        builder.put(processor.rip, at: QEMUState.rip)
        builder.put(processor.cr0, at: QEMUState.cr0)
        builder.put(processor.cr3, at: QEMUState.cr3)
        builder.put(processor.cr4, at: QEMUState.cr4)
        return builder.bytes
    }
}
