import LinuxSystem
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
        do { try AtomicFile.write(bytes, to: statePath, .renameOnly) } catch {
            throw .handoff(path: statePath, reason: "cannot write it: \(error.call) failed: \(error.errno)")
        }
    }

    /// Reads and decodes the handoff at `path`, naming a version mismatch before anything else.
    package static func read(from path: String) throws(LiveUpdateError) -> UpdateHandoff {
        let bytes: [UInt8]
        do {
            bytes = try OwnedFileDescriptor.open(path, .readOnly).readWholeFile(limit: maximumFileBytes, subject: path)
        } catch {
            throw .handoff(path: path, reason: "cannot read it: \(error.call) failed: \(error.errno)")
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
