/// The stream's header and CONFIGURATION section: the machine type decides where the main RAM
/// block sits in guest-physical memory, and the capability list tells whether the RAM is in the
/// stream at all.
struct MigrationStreamConfiguration {
    /// The machine type QEMU ran, e.g. `pc-i440fx-7.2`; nil when the machine sent no
    /// configuration (very old machine types).
    var machineType: String?

    /// Reads magic and version; a wrong magic is "not this format", a wrong version is a format
    /// Engram does not read.
    static func readHeader(_ reader: inout MigrationStreamReader) throws(InspectError) {
        guard reader.file.sizeInBytes >= 8 else {
            throw .unknownFormat(path: reader.path, reason: "it is \(reader.file.sizeInBytes) bytes, too short for a QEMU migration stream header")
        }
        let magic = try reader.bigEndian32("the magic number")
        guard magic == MigrationStreamFormat.magic else {
            throw .unknownFormat(path: reader.path, reason: "it does not start with the QEMU migration magic QEVM (found 0x\(String(magic, radix: 16)))")
        }
        let version = try reader.bigEndian32("the stream version")
        guard version == MigrationStreamFormat.version else {
            throw .unknownFormat(path: reader.path, reason: "its QEMU migration stream version is \(version) at offset 4; only version 3 is read")
        }
    }

    /// Reads a CONFIGURATION section body (after its type byte): the machine name, then its
    /// subsections. Refuses `x-ignore-shared`: with it, shared RAM blocks are left out of the
    /// stream (their bytes stay in the backing file) and the block list gains GPA fields; and
    /// `mapped-ram` (QEMU 9+), whose block list carries headers and whose pages are out of band.
    static func read(_ reader: inout MigrationStreamReader) throws(InspectError) -> MigrationStreamConfiguration {
        let start = reader.offset
        let length = try reader.bigEndian32("the machine type length")
        guard length <= MigrationStreamFormat.maximumMachineNameLength else {
            throw .damaged(path: reader.path, reason: "its CONFIGURATION section at offset \(start - 1) gives a machine type name of \(length) bytes (at most \(MigrationStreamFormat.maximumMachineNameLength) expected)")
        }
        let name = String(decoding: try reader.bytes(Int(length), "the machine type name"), as: UTF8.self)
        while try reader.peekByte() == MigrationStreamFormat.SectionType.subsection.rawValue {
            try readSubsection(&reader)
        }
        return MigrationStreamConfiguration(machineType: name)
    }

    /// One `configuration/...` subsection; their lengths are implied by their names, so an
    /// unknown one cannot be skipped.
    private static func readSubsection(_ reader: inout MigrationStreamReader) throws(InspectError) {
        let start = reader.offset
        _ = try reader.byte("a subsection type")
        let name = try reader.shortString("a CONFIGURATION subsection name")
        _ = try reader.bigEndian32("a subsection version")
        switch name {
        case "configuration/target-page-bits":
            let bits = try reader.bigEndian32("the target page bits")
            guard bits == 12 else {
                throw .unknownFormat(path: reader.path, reason: "its CONFIGURATION subsection at offset \(start) gives a target page size of 2^\(bits) bytes; only x86 streams (4096-byte pages) are read")
            }
        case "configuration/uuid":
            try reader.skip(16, "the VM UUID")
        case "configuration/capabilities":
            let count = try reader.bigEndian32("the capability count")
            guard count <= MigrationStreamFormat.maximumCapabilityCount else {
                throw .damaged(path: reader.path, reason: "its CONFIGURATION subsection at offset \(start) lists \(count) capabilities (at most \(MigrationStreamFormat.maximumCapabilityCount) expected)")
            }
            for _ in 0..<count {
                let capability = try reader.shortString("a capability name")
                if capability == "x-ignore-shared" {
                    throw .unknownFormat(path: reader.path, reason: "it was saved with capability x-ignore-shared (CONFIGURATION subsection at offset \(start)): shared RAM blocks are not in the stream; open the RAM backing file instead")
                }
                if capability == "mapped-ram" {
                    throw .unknownFormat(path: reader.path, reason: "it was saved with capability mapped-ram (CONFIGURATION subsection at offset \(start)), whose pages sit at fixed offsets this reader does not follow")
                }
            }
        default:
            throw .unknownFormat(path: reader.path, reason: "its CONFIGURATION section has subsection \"\(name)\" at offset \(start), whose layout Engram does not know")
        }
    }
}
