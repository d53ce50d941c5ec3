import Glibc
import SystemPackage

/// Reads a whole (kernel or initrd) file; nil and errno on failure.
enum FileBytes {
    static func read(path: String) -> Result<[UInt8], Errno> {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            defer { try? fd.close() }
            let size = try fd.seek(offset: 0, from: .end)
            _ = try fd.seek(offset: 0, from: .start)
            var bytes = [UInt8](repeating: 0, count: Int(size))
            var done = 0
            while done < bytes.count {
                // SAFETY: reads into the array's own storage, from `done` to its end.
                let n = try unsafe bytes.withUnsafeMutableBytes { raw in
                    try unsafe fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[done...]))
                }
                if n == 0 { break }
                done += n
            }
            return .success(Array(bytes[..<done]))
        } catch let error as Errno {
            return .failure(error)
        } catch {
            return .failure(.ioError)
        }
    }
}
