import Devices
import LinuxSystem
import GuestMemory
import Machine
import Paging
import SnapshotFormat
import Transport

/// The destination side of a live migration, up to a machine ready to start: wait for an
/// authenticated source, build the memory its plan describes (fresh memfds, the source's
/// own shared files, or empty regions a post-copy pager fills), prepare KVM meanwhile, take
/// the pages and the state, and rebuild the machine. Anything wrong with what arrives is
/// answered with an ERROR frame — the source then resumes its guest — and thrown.
package struct MigrationArrival {
    package let link: MigrationLink
    package let plan: MigrationPlan
    package let machine: Machine
    /// Post-copy: where the source serves the rest of memory.
    package let pageServer: (port: UInt16, fingerprint: UInt64)?
    package let pagesReceived: UInt64

    /// Waits on `listener` for a source and receives its guest. `backings` may name files for
    /// regions (`--shared-maps`); shared mode maps the files the plan names instead, if they are
    /// in `sharedDirectory` (nil: shared mode is refused).
    package static func receive(
        on listener: ListeningSocket, security: TransportSecurity, backings: [String: RegionBacking], sharedDirectory: String? = nil,
        overrides: DeviceOverrides = DeviceOverrides(),
        consoleLogPath: String?, log: @escaping @Sendable (String) -> Void
    ) throws -> MigrationArrival {
        let link = try MigrationLink.accept(on: listener, security: security, log: log)
        // A source that goes quiet mid-stream is gone.
        link.setReceiveTimeout(milliseconds: MigrationLink.stallMilliseconds)
        var channels: PageChannelReceivers?
        defer { channels?.end() }
        do {
            let plan = try link.receivePlan()
            let channelNote = plan.pageChannelCount > 0 ? ", \(plan.pageChannelCount) page channels" : ""
            log("migration from \(link.peer): \(plan.mode.rawValue), regions \(plan.regions.map { "\($0.name) \($0.sizeInBytes >> 20) MiB" }.joined(separator: ", "))\(channelNote)")
            // Refused here, before memory: a guest this host cannot run (QEMU's configuration section).
            if let preview = plan.previewBytes { try MachinePreview.decode(preview, from: link.peer).check(shapes: plan.shapes, overrides: overrides) }
            try checkHostHolds(dataBytes: plan.dataBytes, available: HostMemory.availableBytes())
            let regions = try buildRegions(plan, backings: backings, sharedDirectory: sharedDirectory)
            // Pages that will arrive are allocated now, in one call per range, rather than faulted in
            // one by one while the first pass streams (which slows it, so the guest dirties more).
            for (index, region) in regions.enumerated() {
                for range in plan.dataPageRanges(region: index) { region.populate(range.lowerBound.regionOffset.rawValue..<range.upperBound.regionOffset.rawValue) }
            }
            let memory = try Machine.restoredMemory(regions)
            let shell = try Machine.prepareShell(memory: memory)
            try link.sendReady()
            // The source connects its page channels once it has READY.
            if plan.pageChannelCount > 0, let token = plan.channelTokenBytes {
                let links = try MigrationLink.acceptChannels(count: plan.pageChannelCount, token: token, on: listener, security: security, log: log)
                for channel in links { channel.setReceiveTimeout(milliseconds: MigrationLink.stallMilliseconds) }
                channels = try PageChannelReceivers(links: links, regions: regions)
            }
            var receiver = MigrationReceiver(link: link, regions: regions, barrier: channels?.barrier)
            let stateBytes: [UInt8]
            do { stateBytes = try receiver.receiveUntilState() } catch {
                // A channel's failure is the cause of the control connection's (the channels ended it).
                throw channels?.barrier.failure ?? error
            }
            if plan.mode == .postcopy, receiver.pageServer == nil {
                throw TransportError.malformed(peer: link.peer, reason: "a post-copy migration sent its state before naming its page server")
            }
            // Every pass has ended on every channel: their threads end before the guest can run.
            channels?.end()
            let pagesReceived = receiver.pagesReceived + (channels?.pagesReceived ?? 0)
            channels = nil
            let record = try overrides.applied(to: MachineStateRecord.decode(stateBytes, snapshotPath: "the migration stream from \(link.peer)"))
            let machine = try Machine(restoring: record, snapshotRegions: plan.shapes, memory: memory, shell: shell, consoleLogPath: consoleLogPath)
            return MigrationArrival(link: link, plan: plan, machine: machine, pageServer: receiver.pageServer, pagesReceived: pagesReceived)
        } catch {
            // Tell the source, so it resumes its guest rather than wait.
            link.connection.sendError("\(error)")
            link.close()
            throw MigrationRefusal("migration from \(link.peer) refused: \(error)")
        }
    }

    /// Refuses a plan whose data pages, allocated at once before the first pass, this host's
    /// available memory cannot hold: a source may name terabytes, and taking them at once would
    /// have the kernel end this host's other VMs to find room.
    static func checkHostHolds(dataBytes: UInt64, available: UInt64?) throws {
        guard let available, dataBytes > available else { return }
        throw MigrationRefusal("the plan's \(dataBytes >> 20) MiB of data pages exceed this host's available memory (\(available >> 20) MiB)")
    }

    /// The plan's regions: the source's files in shared mode, else fresh ones (memfd, or what
    /// `backings` names).
    static func buildRegions(_ plan: MigrationPlan, backings: [String: RegionBacking], sharedDirectory: String?) throws -> [GuestRegion] {
        if plan.mode == .shared, let ram = backings["ram"], case .hugetlbfs = ram {
            throw MigrationRefusal("--hugetlbfs: a shared-mode migration maps the source's own memory files; receive it without --hugetlbfs")
        }
        guard plan.mode == .shared else {
            do { return try SnapshotMemoryLoader.empty(shapes: plan.shapes, backings: backings) } catch { throw MigrationRefusal("\(error)") }
        }
        // The source names files this host opens and writes: only where the operator said.
        guard let sharedDirectory else {
            throw MigrationRefusal("a shared-mode migration maps the source's memory files, and this destination was given no --shared-dir to take them from")
        }
        guard let directory = FileSystem.resolvedPath(sharedDirectory) else { throw MigrationRefusal("--shared-dir \(sharedDirectory): it is gone") }
        return try plan.regions.map { region throws -> GuestRegion in
            guard let path = region.path else { throw MigrationRefusal("region \(region.name) names no shared file") }
            guard let resolved = FileSystem.resolvedPath(path), resolved.hasPrefix(directory == "/" ? "/" : directory + "/") else {
                throw MigrationRefusal("region \(region.name): the source's file \(path) is not in --shared-dir \(sharedDirectory)")
            }
            do { return try GuestRegion(name: region.name, sizeInBytes: region.sizeInBytes, backing: .file(path: resolved)) } catch {
                throw MigrationRefusal("shared mode needs the source's file for region \(region.name) here: \(error)")
            }
        }
    }
}

/// Why this destination did not take a migration, in words for the user.
package struct MigrationRefusal: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
