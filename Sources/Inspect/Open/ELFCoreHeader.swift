/// The checked ELF header of a core: it is ELF64, little-endian, ET_CORE for x86, and its
/// program header table lies inside the file. Everything later reads through it.
struct ELFCoreHeader {
    /// The end of x86-64's physical address space (52 bits): no guest memory lies past it.
    static let physicalAddressLimit: UInt64 = 1 << 52
    let path: String
    let machine: UInt16
    let programHeaderOffset: UInt64
    let programHeaderSize: UInt64
    let programHeaderCount: Int

    init(file: ImageFile) throws(InspectError) {
        path = file.path
        guard file.sizeInBytes >= UInt64(ELFFormat.headerSize) else {
            if file.sizeInBytes >= 4, try file.read(count: 4, at: 0) == ELFFormat.magic {
                throw .damaged(path: path, reason: "its ELF header is cut short: the file is \(file.sizeInBytes) bytes, the header \(ELFFormat.headerSize)")
            }
            throw .unknownFormat(path: path, reason: "it is \(file.sizeInBytes) bytes, shorter than an ELF header")
        }
        let bytes = try file.read(count: ELFFormat.headerSize, at: 0)
        guard bytes.starts(with: ELFFormat.magic) else { throw .unknownFormat(path: path, reason: "it does not start with the ELF magic") }
        guard bytes[4] == ELFFormat.class64 else {
            throw .unknownFormat(path: path, reason: "its ELF class (EI_CLASS) is \(bytes[4]); Engram reads ELF64 cores (2) only")
        }
        guard bytes[5] == ELFFormat.littleEndian else {
            throw .unknownFormat(path: path, reason: "its byte order (EI_DATA) is \(bytes[5]); x86 cores are little-endian (1)")
        }
        let fields = ELFFieldReader(bytes: bytes, path: path, structure: "the ELF header")
        let type = try fields.value(UInt16.self, at: ELFFormat.Header.type, field: "e_type")
        guard type == ELFFormat.typeCore else {
            throw .unknownFormat(path: path, reason: "it is an ELF file but not a core: e_type is \(type), a core's is \(ELFFormat.typeCore)")
        }
        machine = try fields.value(UInt16.self, at: ELFFormat.Header.machine, field: "e_machine")
        guard machine == ELFFormat.machineX86_64 || machine == ELFFormat.machine386 else {
            throw .unknownFormat(path: path, reason: "its e_machine is \(machine); Engram reads x86 cores (EM_X86_64 62, EM_386 3)")
        }
        programHeaderOffset = try fields.value(UInt64.self, at: ELFFormat.Header.phoff, field: "e_phoff")
        programHeaderSize = UInt64(try fields.value(UInt16.self, at: ELFFormat.Header.phentsize, field: "e_phentsize"))
        guard programHeaderSize >= UInt64(ELFFormat.programHeaderSize) else {
            throw .damaged(path: path, reason: "e_phentsize is \(programHeaderSize), smaller than an Elf64_Phdr (\(ELFFormat.programHeaderSize) bytes)")
        }
        let count = try fields.value(UInt16.self, at: ELFFormat.Header.phnum, field: "e_phnum")
        let total: UInt64 = count == ELFFormat.extendedCount
            ? try Self.extendedCount(fields: fields, file: file)
            : UInt64(count)
        guard total > 0 else { throw .damaged(path: path, reason: "e_phnum is 0: the core has no program headers, so no memory") }
        let (tableSize, sizeOverflow) = total.multipliedReportingOverflow(by: programHeaderSize)
        let (tableEnd, endOverflow) = programHeaderOffset.addingReportingOverflow(tableSize)
        guard !sizeOverflow, !endOverflow, tableEnd <= file.sizeInBytes else {
            throw .damaged(path: path, reason: "its program header table (e_phoff \(programHeaderOffset), e_phnum \(total) of e_phentsize \(programHeaderSize)) runs past the end of the file (\(file.sizeInBytes) bytes)")
        }
        programHeaderCount = Int(total)
    }

    /// The real program header count when e_phnum is PN_XNUM: sh_info of section header 0,
    /// which QEMU writes for guests with more than 65534 memory ranges.
    private static func extendedCount(fields: ELFFieldReader, file: ImageFile) throws(InspectError) -> UInt64 {
        let offset = try fields.value(UInt64.self, at: ELFFormat.Header.shoff, field: "e_shoff")
        let (end, overflow) = offset.addingReportingOverflow(UInt64(ELFFormat.sectionHeaderSize))
        guard offset > 0, !overflow, end <= file.sizeInBytes else {
            throw .damaged(path: file.path, reason: "e_phnum is PN_XNUM (0xffff) but e_shoff \(offset) puts section header 0, which holds the count, outside the file (\(file.sizeInBytes) bytes)")
        }
        let section = ELFFieldReader(bytes: try file.read(count: ELFFormat.sectionHeaderSize, at: offset), path: file.path, structure: "section header 0")
        return UInt64(try section.value(UInt32.self, at: ELFFormat.sectionInfoOffset, field: "sh_info"))
    }

    /// Program header `index`, with its file bytes checked to lie inside the file.
    func programHeader(_ index: Int, of file: ImageFile) throws(InspectError) -> ELFProgramHeader {
        let bytes = try file.read(count: ELFFormat.programHeaderSize, at: programHeaderOffset + UInt64(index) * programHeaderSize)
        let fields = ELFFieldReader(bytes: bytes, path: path, structure: "program header \(index)")
        let segment = ELFProgramHeader(
            type: try fields.value(UInt32.self, at: ELFFormat.ProgramHeader.type, field: "p_type"),
            offset: try fields.value(UInt64.self, at: ELFFormat.ProgramHeader.offset, field: "p_offset"),
            physicalAddress: try fields.value(UInt64.self, at: ELFFormat.ProgramHeader.paddr, field: "p_paddr"),
            fileSize: try fields.value(UInt64.self, at: ELFFormat.ProgramHeader.filesz, field: "p_filesz"),
            memorySize: try fields.value(UInt64.self, at: ELFFormat.ProgramHeader.memsz, field: "p_memsz"))
        guard segment.type == ELFFormat.segmentLoad || segment.type == ELFFormat.segmentNote, segment.fileSize > 0 else { return segment }
        let name = segment.type == ELFFormat.segmentLoad ? "PT_LOAD" : "PT_NOTE"
        let (end, overflow) = segment.offset.addingReportingOverflow(segment.fileSize)
        guard !overflow, end <= file.sizeInBytes else {
            throw .damaged(path: path, reason: "program header \(index) (\(name)) has p_offset \(segment.offset) and p_filesz \(segment.fileSize), past the end of the file (\(file.sizeInBytes) bytes)")
        }
        if segment.type == ELFFormat.segmentNote {
            guard segment.fileSize <= ELFNoteList.maximumSize else {
                throw .damaged(path: path, reason: "program header \(index) (PT_NOTE) has p_filesz \(segment.fileSize), more than the \(ELFNoteList.maximumSize) bytes any core's notes need")
            }
            return segment
        }
        guard segment.fileSize <= segment.memorySize else {
            throw .damaged(path: path, reason: "program header \(index) (PT_LOAD) has p_filesz \(segment.fileSize) larger than p_memsz \(segment.memorySize)")
        }
        // Within x86-64's 52-bit physical address space: sizes that fit it can be rounded to
        // pages and added up (a load of 2^64 - 1 bytes at 0 overflowed both, and trapped).
        let (memoryEnd, addressOverflow) = segment.physicalAddress.addingReportingOverflow(segment.memorySize)
        guard !addressOverflow, memoryEnd <= Self.physicalAddressLimit else {
            throw .damaged(path: path, reason: "program header \(index) (PT_LOAD) has p_paddr 0x\(String(segment.physicalAddress, radix: 16)) and p_memsz \(segment.memorySize), past the 52-bit physical address space")
        }
        return segment
    }
}

/// The fields of an Elf64_Phdr a memory reader uses.
struct ELFProgramHeader {
    var type: UInt32
    var offset: UInt64
    var physicalAddress: UInt64
    var fileSize: UInt64
    var memorySize: UInt64
}
