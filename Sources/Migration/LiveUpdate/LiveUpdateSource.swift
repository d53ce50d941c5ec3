import LinuxSystem
import FoundationEssentials
import Glibc
import GuestMemory
import Machine

/// The old VMM's side of a live update: what can be handed over, and the handoff itself.
package enum LiveUpdateSource {
    /// Each region as the new process will find it; refuses memory exec would destroy.
    ///
    /// Shared memfds and files survive exec (their descriptors stay open); private anonymous
    /// memory and copy-on-write snapshot maps (`engram restore --memory map`) belong to this
    /// process's address space alone, as QEMU's cpr refuses non-shared RAM.
    package static func inheritedRegions(of memory: GuestMemoryMap) throws(LiveUpdateError) -> [InheritedRegion] {
        try memory.regions.map { (region) throws(LiveUpdateError) -> InheritedRegion in
            let backing: InheritedBacking
            switch region.backing {
            case .memfd: backing = .memfd
            case .file(let file): backing = .file(path: file)
            case .sharedFile(let file, _): backing = .sharedFile(path: file)
            case .hugetlbfs(let directory): backing = .hugetlbfs(directory: directory)
            case .anonymous:
                throw .memoryNotInheritable(
                    region: region.name, reason: "is private anonymous memory (--anonymous-memory), which does not survive exec")
            case .snapshotCopyOnWrite(let snapshot):
                throw .memoryNotInheritable(
                    region: region.name,
                    reason: "is a private copy-on-write map of \(snapshot) (restore --memory map), which does not survive exec; "
                        + "restore with --memory copy or lazy to allow live updates")
            case .forkCopyOnWrite(let base):
                throw .memoryNotInheritable(
                    region: region.name,
                    reason: "is a forked VM's private copy-on-write map of \(base), which does not survive exec; "
                        + "snapshot it and restore with --memory copy or lazy to allow live updates")
            }
            guard let descriptor = region.fileDescriptor else {
                throw .memoryNotInheritable(region: region.name, reason: "has no descriptor to keep open")
            }
            return InheritedRegion(name: region.name, sizeInBytes: region.sizeInBytes, backing: backing, descriptor: descriptor)
        }
    }

    /// Refuses a state path the handoff could not be written to, before anything is paused.
    package static func checkStatePath(_ path: String) throws(LiveUpdateError) {
        guard path.hasPrefix("/") else { throw .handoff(path: path, reason: "must be an absolute path") }
        let directory = String(path[..<path.lastIndex(of: "/")!])
        guard FileSystem.isWritable(directory.isEmpty ? "/" : directory) else {
            throw .handoff(path: path, reason: "its directory is missing or not writable")
        }
    }

    /// Deletes a handoff file: once the guest runs in the new process (it holds the vCPUs'
    /// registers), or after exec failed.
    package static func removeHandoff(at path: String) { FileSystem.remove(path) }

    /// The state path used when the request names none: beside the control socket.
    package static func defaultStatePath(socketPath: String) -> String { socketPath + ".update" }

    /// CLOCK_MONOTONIC in nanoseconds: it runs on across exec, so both processes can time the pause.
    package static func monotonicNanoseconds() -> UInt64 {
        MonotonicClock.nanoseconds()
    }
}
