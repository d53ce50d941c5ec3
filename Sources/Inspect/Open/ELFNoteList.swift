/// The notes of one PT_NOTE segment, split by their headers with every name and descriptor
/// length checked against the segment, so a damaged length is reported, not followed.
struct ELFNoteList {
    struct Note {
        /// The name without its terminating NUL ("CORE", "QEMU").
        var name: String
        var type: UInt32
        var descriptor: ArraySlice<UInt8>
    }

    /// Larger than any real core's notes (QEMU caps its guest note at 1 MiB; each vCPU adds
    /// under 1 KiB), small enough that a damaged p_filesz does not allocate gigabytes.
    static let maximumSize: UInt64 = 64 << 20

    private(set) var notes: [Note] = []

    init(bytes: [UInt8], path: String) throws(InspectError) {
        let fields = ELFFieldReader(bytes: bytes, path: path, structure: "the PT_NOTE segment")
        var position = 0
        while position < bytes.count {
            let number = notes.count
            guard bytes.count - position >= ELFFormat.noteHeaderSize else {
                // Trailing zero padding is harmless; anything else is a cut-off note header.
                if bytes[position...].allSatisfy({ $0 == 0 }) { break }
                throw .damaged(path: path, reason: "note \(number) at offset \(position) of the PT_NOTE segment has only \(bytes.count - position) bytes, less than a note header (\(ELFFormat.noteHeaderSize))")
            }
            let nameSize = Int(try fields.value(UInt32.self, at: position, field: "n_namesz of note \(number)"))
            let descriptorSize = Int(try fields.value(UInt32.self, at: position + 4, field: "n_descsz of note \(number)"))
            let type = try fields.value(UInt32.self, at: position + 8, field: "n_type of note \(number)")
            let nameStart = position + ELFFormat.noteHeaderSize
            let left = bytes.count - nameStart
            guard nameSize <= left else {
                throw .damaged(path: path, reason: "note \(number) has n_namesz \(nameSize), past the end of the PT_NOTE segment (\(left) bytes left)")
            }
            let descriptorStart = nameStart + ELFFormat.noteAligned(nameSize)
            guard descriptorStart <= bytes.count, descriptorSize <= bytes.count - descriptorStart else {
                throw .damaged(path: path, reason: "note \(number) has n_descsz \(descriptorSize), past the end of the PT_NOTE segment (\(max(0, bytes.count - descriptorStart)) bytes left)")
            }
            var name = Array(bytes[nameStart..<nameStart + nameSize])
            while name.last == 0 { name.removeLast() }
            notes.append(Note(name: String(decoding: name, as: UTF8.self), type: type,
                              descriptor: bytes[descriptorStart..<descriptorStart + descriptorSize]))
            position = min(bytes.count, descriptorStart + ELFFormat.noteAligned(descriptorSize))
        }
    }
}
