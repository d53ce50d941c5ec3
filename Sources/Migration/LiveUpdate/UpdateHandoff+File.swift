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
        let handoff: UpdateHandoff
        do { handoff = try JSONDecoder().decode(UpdateHandoff.self, from: Data(bytes)) } catch {
            throw .handoff(path: path, reason: "does not decode: \(error)")
        }
        if let problem = handoff.countsProblem { throw .handoff(path: path, reason: problem) }
        return handoff
    }

    /// What is wrong with the handoff's update counts, or nil: the new VMM counts on from them.
    package var countsProblem: String? {
        let limit = Int(Int32.max)
        guard (0...limit).contains(update), (0...limit).contains(updatesCompleted) else {
            return "update \(update) with \(updatesCompleted) completed: expected counts from 0 to \(limit)"
        }
        return nil
    }

    /// How long the guest has been paused at `now` (ns), in ms; 0 if the handoff says it paused later.
    package func pausedMilliseconds(at now: UInt64) -> Double {
        now > pausedAtNanoseconds ? Double(now - pausedAtNanoseconds) / 1e6 : 0
    }
}
