import FoundationEssentials
import Glibc
import SystemPackage

extension UpdateHandoff {
    /// The largest handoff file read (a few vCPUs' state is tens of KiB).
    static let maximumFileBytes = 16 << 20

    /// Writes the handoff to `statePath` (mode 0600, replacing it atomically). Not fsynced: it
    /// is read back at once on this host, and memfd guest memory would not outlive a host crash.
    package func write() throws(LiveUpdateError) {
        let bytes: [UInt8]
        do { bytes = Array(try JSONEncoder().encode(self)) } catch {
            throw .handoff(path: statePath, reason: "cannot encode: \(error)")
        }
        let temporary = statePath + ".tmp-\(getpid())"
        do {
            let file = try FileDescriptor.open(
                FilePath(temporary), .writeOnly, options: [.create, .exclusiveCreate, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite])
            try file.closeAfter { _ = try file.writeAll(bytes) }
            guard unsafe rename(temporary, statePath) == 0 else { throw Errno(rawValue: errno) }
        } catch {
            _ = unsafe unlink(temporary)
            throw .handoff(path: statePath, reason: "cannot write it: \(error)")
        }
    }

    /// Reads and decodes the handoff at `path`, naming a version mismatch before anything else.
    package static func read(from path: String) throws(LiveUpdateError) -> UpdateHandoff {
        let bytes: [UInt8]
        do {
            let file = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            bytes = try file.closeAfter { () throws -> [UInt8] in
                let size = try file.seek(offset: 0, from: .end)
                guard size <= maximumFileBytes else { throw Errno.fileTooLarge }
                // SAFETY: the read fills at most `size` bytes of the fresh buffer and reports how many.
                return try unsafe [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, count in
                    count = try unsafe file.read(fromAbsoluteOffset: 0, into: UnsafeMutableRawBufferPointer(buffer))
                }
            }
        } catch {
            throw .handoff(path: path, reason: "cannot read it: \(error)")
        }
        struct VersionOnly: Decodable { var version: Int }
        guard let version = try? JSONDecoder().decode(VersionOnly.self, from: Data(bytes)).version else {
            throw .handoff(path: path, reason: "not an Engram update handoff (no version)")
        }
        guard version == currentVersion else { throw .handoffVersion(path: path, found: version, expected: currentVersion) }
        do {
            return try JSONDecoder().decode(UpdateHandoff.self, from: Data(bytes))
        } catch {
            throw .handoff(path: path, reason: "does not decode: \(error)")
        }
    }
}
