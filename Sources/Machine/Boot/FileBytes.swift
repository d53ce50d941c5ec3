import LinuxSystem
import SystemPackage

/// Reads a whole (kernel or initrd) file.
enum FileBytes {
    /// The most read: larger than any kernel or initramfs Engram boots.
    static let maximumBytes = 1 << 31

    static func read(path: String) -> Result<[UInt8], Errno> {
        do throws(SystemError) {
            return .success(try OwnedFileDescriptor.open(path, .readOnly).readWholeFile(limit: maximumBytes, subject: path))
        } catch {
            return .failure(error.errno)
        }
    }
}
