import CLinux
import Glibc
import SystemPackage

/// A disk image a block device serves: a regular file (or block device) opened once, read and
/// written at offsets, synced, and punched sparse where the guest discards.
package final class DiskFile: Sendable {
    /// The path it was opened at, for messages.
    package let path: String
    package let descriptor: OwnedFileDescriptor
    package let isReadOnly: Bool

    /// Opens `path` read-write, or read-only; refuses anything but a regular file or a block device.
    package init(path: String, readOnly: Bool) throws(SystemError) {
        let owned = try OwnedFileDescriptor.open(path, readOnly ? .readOnly : .readWrite)
        guard let status = FileStatus(descriptor: owned.rawValue) else { throw .last("fstat", on: path) }
        guard status.kind == .regular || status.kind == .blockDevice else {
            throw SystemError("open", on: path, status.kind == .directory ? .isDirectory : .invalidArgument)
        }
        self.path = path
        descriptor = owned
        isReadOnly = readOnly
    }

    /// Adopts a descriptor kept open across exec (live update).
    package init(adopting descriptor: OwnedFileDescriptor, path: String, readOnly: Bool) {
        self.path = path
        self.descriptor = descriptor
        isReadOnly = readOnly
    }

    /// The image's current length in bytes (the end, for block devices).
    package func sizeInBytes() throws(SystemError) -> UInt64 {
        let end = lseek(descriptor.rawValue, 0, SEEK_END)
        guard end >= 0 else { throw .last("lseek", on: path) }
        return UInt64(end)
    }

    /// fdatasync(2): what the guest wrote is on stable storage.
    package func syncData() throws(SystemError) {
        while fdatasync(descriptor.rawValue) != 0 {
            guard errno == EINTR else { throw .last("fdatasync", on: path) }
        }
    }

    /// Deallocates `[offset, offset+length)`, which then reads as zeros; the length stays.
    package func punchHole(at offset: UInt64, length: UInt64) throws(SystemError) {
        while clinux_punch_hole(descriptor.rawValue, Int64(offset), Int64(length)) != 0 {
            guard errno == EINTR else { throw .last("fallocate", on: path) }
        }
    }
}
