import FoundationEssentials
import Glibc
import GuestMemory
import Machine
import SnapshotFormat

/// The new VMM's side of a live update: the inherited memory mapped again, the machine rebuilt
/// around it, and, if that fails, the guest saved as a snapshot for `engram restore`.
package enum LiveUpdateTarget {
    /// Maps every inherited region (shared, as before exec: the same pages, not a copy).
    package static func memory(of handoff: UpdateHandoff) throws(LiveUpdateError) -> GuestMemoryMap {
        try memory(of: handoff.regions)
    }

    /// Maps `inherited` regions, taking their descriptors (shared: the same pages, not a copy).
    package static func memory(of inherited: [InheritedRegion]) throws(LiveUpdateError) -> GuestMemoryMap {
        var regions: [GuestRegion] = []
        for inherited in inherited { regions.append(try region(inherited)) }
        do { return try Machine.restoredMemory(regions) } catch { throw .restoreFailed(reason: error.description) }
    }

    /// Maps one inherited region, taking its descriptor (shared: the same pages, not a copy).
    package static func region(_ inherited: InheritedRegion) throws(LiveUpdateError) -> GuestRegion {
        do {
            return try GuestRegion(
                name: inherited.name, sizeInBytes: inherited.sizeInBytes, backing: inherited.backing.regionBacking,
                adopting: inherited.descriptor, path: inherited.backing.filePath)
        } catch {
            throw .restoreFailed(reason: "cannot map inherited region \(inherited.name): \(error)")
        }
    }

    /// The machine, rebuilt from the handoff's state around `memory`, its devices continuing
    /// the host sides the previous process kept open; not started.
    package static func machine(of handoff: UpdateHandoff, memory: GuestMemoryMap, shell prepared: MachineShell? = nil) throws(LiveUpdateError) -> Machine {
        let devices = try handoff.inheritedDevices()
        do {
            let shell: MachineShell
            if let prepared { shell = prepared } else { shell = try Machine.prepareShell(memory: memory) }
            return try Machine(
                continuing: handoff.machine, memory: memory, shell: shell, consoleLogPath: handoff.consoleLogPath,
                appendToConsoleLog: true, inheritedDevices: devices)
        } catch {
            throw .restoreFailed(reason: error.description)
        }
    }

    /// Writes a full snapshot of `memory` and the handed-over state over the handoff file, so
    /// `engram restore STATE_PATH` brings the guest back once this process has gone (a memfd
    /// dies with the last process holding it). Returns why it could not, or nil.
    package static func saveForRestore(_ handoff: UpdateHandoff, memory: GuestMemoryMap) -> String? {
        do {
            _ = try SnapshotWriter.writeFull(memory: memory, contents: try handoff.machine.contents(), to: handoff.statePath)
            return nil
        } catch {
            return "\(error)"
        }
    }

}
