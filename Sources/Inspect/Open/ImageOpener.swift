import LinuxSystem
/// Opens any input `engram mem` reads, telling formats apart by their first bytes.
package enum ImageOpener {
    /// Opens `path`: an Engram snapshot, a QEMU migration stream, an ELF core, or else a raw RAM
    /// file placed by `layout`. `verifyPages` checks a snapshot's pages against their CRCs as
    /// they are read (the other formats record none).
    package static func open(path: String, layout: RawLayout = .pc, verifyPages: Bool = true) throws(InspectError) -> MemoryImage {
        let file = try ImageFile(path: path)
        let head = try file.read(count: Int(min(8, file.sizeInBytes)), at: 0)
        if head.starts(with: Array("ENGRAMSN".utf8)) { return try MemoryImage.snapshot(path: path, verifyPages: verifyPages) }
        if head.starts(with: Array("ENGRAMWS".utf8)) {
            throw .unknownFormat(path: path, reason: "it is an Engram working-set file (a list of pages), not memory")
        }
        if head.starts(with: [0x51, 0x45, 0x56, 0x4D]) { return try MemoryImage.qemuMigrationStream(path: path) }
        if head.starts(with: [0x7F, 0x45, 0x4C, 0x46]) { return try MemoryImage.elfCore(path: path) }
        guard file.sizeInBytes > 0, file.sizeInBytes % PageSize.bytes64 == 0 else {
            throw .unknownFormat(path: path, reason: "it has no header Engram knows (Engram snapshot, QEMU migration stream, ELF core) and its size, \(file.sizeInBytes) bytes, is not a whole number of 4096-byte pages as a raw RAM file's is")
        }
        return try MemoryImage.raw(path: path, layout: layout)
    }
}
