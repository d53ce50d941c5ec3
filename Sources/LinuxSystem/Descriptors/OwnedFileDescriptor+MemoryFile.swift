import CLinux
import Glibc

extension OwnedFileDescriptor {
    /// A new anonymous file in memory (memfd_create(2), close-on-exec) holding `bytes`, read from
    /// offset 0 with `readWholeFile`: state handed to another process by descriptor (a live
    /// update's), however large, without a file on disk.
    package static func memoryFile(name: String, holding bytes: [UInt8]) throws(SystemError) -> OwnedFileDescriptor {
        // SAFETY: the name is bridged to a C string for the call.
        let fd = unsafe clinux_memfd_create("engram-\(name)", UInt32(MFD_CLOEXEC))
        guard fd >= 0 else { throw .last("memfd_create", on: name) }
        let file = OwnedFileDescriptor(taking: fd)
        if !bytes.isEmpty { try file.writeAll(bytes, at: 0, subject: name) }
        return file
    }
}
