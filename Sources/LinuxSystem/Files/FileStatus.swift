import Glibc

/// What stat(2) says of a path: its type, identity, mode and size.
package struct FileStatus: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case regular, directory, symbolicLink, socket, fifo, characterDevice, blockDevice, unknown
    }

    package let kind: Kind
    /// Device and inode: the same pair means the same file.
    package let device: UInt64
    package let inode: UInt64
    /// Permission bits (mode & 0o7777).
    package let permissions: UInt32
    package let sizeInBytes: UInt64
    /// The owning user and group.
    package let owner: UInt32
    package let group: UInt32
    /// For a device node, the device it stands for (st_rdev); 0 otherwise.
    package let deviceNumber: UInt64

    /// The status of `path` (of a symbolic link itself unless `followingLinks`); nil with errno
    /// set if it cannot be had (ENOENT: nothing is there).
    package init?(path: String, followingLinks: Bool = true) {
        var info = stat()
        // SAFETY: `info` is a local the call fills; the path is bridged to a C string for the call.
        guard unsafe (followingLinks ? stat(path, &info) : lstat(path, &info)) == 0 else { return nil }
        self.init(info)
    }

    /// The status of the file open at `descriptor` (fstat(2)); nil with errno set if it cannot be had.
    package init?(descriptor: CInt) {
        var info = stat()
        // SAFETY: `info` is a local the call fills.
        guard unsafe fstat(descriptor, &info) == 0 else { return nil }
        self.init(info)
    }

    private init(_ info: stat) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        case S_IFSOCK: kind = .socket
        case S_IFIFO: kind = .fifo
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        default: kind = .unknown
        }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        permissions = UInt32(info.st_mode & 0o7777)
        sizeInBytes = UInt64(max(0, info.st_size))
        owner = info.st_uid
        group = info.st_gid
        deviceNumber = UInt64(info.st_rdev)
    }
}

/// Small questions and changes about paths.
package enum FileSystem {
    /// True if this process may write in (or to) `path` (access(2) with W_OK).
    package static func isWritable(_ path: String) -> Bool { access(path, W_OK) == 0 }

    /// True if this process may execute `path` (access(2) with X_OK).
    package static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    /// Removes the name `path` (unlink(2)); false if it could not.
    @discardableResult
    package static func remove(_ path: String) -> Bool { unlink(path) == 0 }

    /// Sets a file's access and modification times to now (utimes(2)).
    package static func touch(_ path: String) { _ = unsafe utimes(path, nil) }
}
