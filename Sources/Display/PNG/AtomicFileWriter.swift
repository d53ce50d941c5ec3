import CLinux
import Glibc
import SystemPackage

/// Writes a whole file so readers never see half of it: a private temporary file in the same
/// directory (so the rename stays on one file system), written, synced, then renamed over `path`.
package enum AtomicFileWriter {
    /// Writes `bytes` to `path` with mode 0600, replacing any file there.
    package static func write(_ bytes: [UInt8], to path: String) throws(DisplayError) {
        // mkostemp creates the file with mode 0600 and a name no other writer can predict.
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        // SAFETY: mkostemp rewrites the XXXXXX in place inside the NUL-terminated local array.
        let fd = unsafe template.withUnsafeMutableBufferPointer { unsafe clinux_mkostemp($0.baseAddress!, O_CLOEXEC) }
        guard fd >= 0 else { throw .fileWrite(path: path, step: "creating a temporary file", Errno(rawValue: errno)) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var committed = false
        defer {
            // SAFETY: the path is passed as a NUL-terminated copy that lives through the call.
            if !committed { _ = unsafe unlink(temporary) }
        }
        do {
            defer { close(fd) }
            var offset = 0
            while offset < bytes.count {
                // SAFETY: write reads at most the bytes left in the array.
                let written = unsafe bytes.withUnsafeBytes { unsafe Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw DisplayError.fileWrite(path: path, step: "write", Errno(rawValue: errno))
                }
                offset += written
            }
            guard fsync(fd) == 0 else { throw DisplayError.fileWrite(path: path, step: "fsync", Errno(rawValue: errno)) }
        }
        // SAFETY: both paths are passed as NUL-terminated copies that live through the call.
        guard unsafe rename(temporary, path) == 0 else { throw .fileWrite(path: path, step: "rename", Errno(rawValue: errno)) }
        committed = true
    }
}
