/// vCPU registers from a core's "QEMU" notes (QEMUCPUState). Other notes — NT_PRSTATUS, a
/// guest's VMCOREINFO — add nothing a page-table walk needs and are passed over.
enum ELFCoreProcessors {
    private static let cr0PG: UInt64 = 1 << 31
    private static let cr4PAE: UInt64 = 1 << 5
    /// EFER.LME and EFER.LMA.
    private static let longModeEFER: UInt64 = 1 << 8 | 1 << 10

    /// One processor per version-1 QEMU note, numbered from `firstID` in note order (QEMU's CPU
    /// order). A note of another version is skipped: its layout is unknown, and the memory is
    /// still worth reading without registers.
    static func decode(_ list: ELFNoteList, machine: UInt16, path: String, firstID: Int) throws(InspectError) -> [ProcessorState] {
        var processors: [ProcessorState] = []
        for (number, note) in list.notes.enumerated() where note.name == ELFCoreNotes.qemuName {
            let state = ELFCoreNotes.QEMUState.self
            let fields = ELFFieldReader(bytes: Array(note.descriptor), path: path, structure: "QEMU note \(number)")
            guard note.descriptor.count >= state.minimumSize else {
                throw .damaged(path: path, reason: "QEMU note \(number) has n_descsz \(note.descriptor.count), shorter than QEMUCPUState (at least \(state.minimumSize) bytes)")
            }
            guard try fields.value(UInt32.self, at: state.versionOffset, field: "version") == state.version else { continue }
            let size = try fields.value(UInt32.self, at: state.sizeOffset, field: "size")
            guard size >= UInt32(state.minimumSize), size <= UInt32(note.descriptor.count) else {
                throw .damaged(path: path, reason: "QEMU note \(number) says its QEMUCPUState is \(size) bytes; it must be \(state.minimumSize)...\(note.descriptor.count)")
            }
            let cr0 = try fields.value(UInt64.self, at: state.cr0, field: "cr[0]")
            let cr4 = try fields.value(UInt64.self, at: state.cr4, field: "cr[4]")
            let codeFlags = try fields.value(UInt32.self, at: state.codeSegmentFlags, field: "cs.flags")
            // EFER is not in the note. Long mode is paging with PAE on a core QEMU marked
            // EM_X86_64 (it does so only when the first vCPU had EFER.LMA), or with a 64-bit cs.
            let longMode = cr0 & cr0PG != 0 && cr4 & cr4PAE != 0
                && (machine == ELFFormat.machineX86_64 || codeFlags & state.longModeCodeFlag != 0)
            processors.append(ProcessorState(
                id: firstID + processors.count, cr0: cr0,
                cr3: try fields.value(UInt64.self, at: state.cr3, field: "cr[3]"), cr4: cr4,
                efer: longMode ? longModeEFER : 0,
                rip: try fields.value(UInt64.self, at: state.rip, field: "rip")))
        }
        return processors
    }
}
