import CLinux
import Glibc
import LinuxSystem
import SystemPackage

/// Opens or creates the descriptor behind a region, checking sizes before anything is mapped.
enum BackingFile {
    /// Returns the descriptor (nil for anonymous memory) and the path other processes can open.
    static func open(
        _ backing: RegionBacking, regionName: String, sizeInBytes: UInt64
    ) throws(GuestMemoryError) -> (OwnedFileDescriptor?, String?) {
        switch backing {
        case .memfd:
            let fd = unsafe clinux_memfd_create("engram-\(regionName)", UInt32(MFD_CLOEXEC))
            guard fd >= 0 else { throw .systemCall(name: "memfd_create", region: regionName, Errno(rawValue: errno)) }
            let owned = OwnedFileDescriptor(taking: fd)
            try resize(owned, to: sizeInBytes, regionName: regionName)
            return (owned, nil)
        case .file(let path):
            return (try openExisting(path: path, sizeInBytes: sizeInBytes), path)
        case .sharedFile(let path, let overwrite):
            let owned = try create(path: path, overwrite: overwrite)
            try resize(owned, to: sizeInBytes, regionName: regionName)
            return (owned, path)
        case .hugetlbfs(let directory):
            return (try openHugetlbfs(directory: directory, regionName: regionName, sizeInBytes: sizeInBytes), nil)
        case .anonymous:
            return (nil, nil)
        case .snapshotCopyOnWrite(let path), .forkCopyOnWrite(let path):
            throw .fileOpen(path: path, .notSupported)  // built from an open snapshot or base, not by name
        }
    }

    private static func openExisting(path: String, sizeInBytes: UInt64) throws(GuestMemoryError) -> OwnedFileDescriptor {
        var info = stat()
        // SAFETY: `info` is a local the call fills in.
        guard unsafe stat(path, &info) == 0 else {
            if errno == ENOENT { throw .fileMissing(path: path) }
            throw .fileOpen(path: path, Errno(rawValue: errno))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .fileOpen(path: path, .notSupported) }
        let fd = unsafe Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Errno(rawValue: errno)
            if error == .permissionDenied || error == .readOnlyFileSystem || error == .notPermitted { throw .fileNotWritable(path: path, error) }
            throw .fileOpen(path: path, error)
        }
        let owned = OwnedFileDescriptor(taking: fd)
        let actual = UInt64(info.st_size)
        guard actual == sizeInBytes else { throw .fileSizeMismatch(path: path, actual: actual, expected: sizeInBytes) }
        return owned
    }

    private static func create(path: String, overwrite: Bool) throws(GuestMemoryError) -> OwnedFileDescriptor {
        if overwrite, unsafe unlink(path) != 0, errno != ENOENT { throw .fileCreate(path: path, Errno(rawValue: errno)) }
        // O_EXCL so the file is surely new and surely 0600: guest memory holds secrets.
        let fd = unsafe Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw .fileExists(path: path) }
            throw .fileCreate(path: path, Errno(rawValue: errno))
        }
        return OwnedFileDescriptor(taking: fd)
    }

    private static func openHugetlbfs(
        directory: String, regionName: String, sizeInBytes: UInt64
    ) throws(GuestMemoryError) -> OwnedFileDescriptor {
        let blockSize = unsafe clinux_statfs_block_size(directory)
        guard blockSize > 0 else { throw .notADirectory(path: directory) }
        let hugePageSize = UInt64(blockSize)
        guard hugePageSize > 0, sizeInBytes % hugePageSize == 0 else {
            throw .hugePageSizeMismatch(path: directory, sizeInBytes: sizeInBytes, hugePageSize: hugePageSize)
        }
        var template = Array((directory + "/engram-\(regionName)-XXXXXX").utf8CString)
        // SAFETY: mkstemp rewrites the NUL-terminated template in place, within its length.
        let fd = unsafe template.withUnsafeMutableBufferPointer { unsafe clinux_mkostemp($0.baseAddress!, O_CLOEXEC) }
        guard fd >= 0 else { throw .fileCreate(path: directory, Errno(rawValue: errno)) }
        let owned = OwnedFileDescriptor(taking: fd)
        // SAFETY: the template holds the created file's NUL-terminated name.
        unsafe template.withUnsafeBufferPointer { _ = unsafe unlink($0.baseAddress!) }
        try resize(owned, to: sizeInBytes, regionName: regionName)
        return owned
    }

    private static func resize(_ fd: OwnedFileDescriptor, to size: UInt64, regionName: String) throws(GuestMemoryError) {
        guard ftruncate(fd.rawValue, off_t(size)) == 0 else {
            throw .systemCall(name: "ftruncate", region: regionName, Errno(rawValue: errno))
        }
    }
}
