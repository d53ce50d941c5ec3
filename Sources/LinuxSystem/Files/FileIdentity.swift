import Glibc

/// Which file a path or descriptor reaches (device and inode), whatever name it goes by: how a
/// writer recognises a file it must never replace, such as the VM's own RAM or display file.
package struct FileIdentity: Hashable, Sendable {
    package let device: UInt64
    package let inode: UInt64

    package init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// The identity of the file open at `descriptor` (fstat(2)); nil with errno set if it cannot
    /// be had.
    package init?(descriptor: CInt) {
        guard let status = FileStatus(descriptor: descriptor) else { return nil }
        self = status.identity
    }
}

extension FileStatus {
    /// The file this status is of.
    package var identity: FileIdentity { FileIdentity(device: device, inode: inode) }
}
