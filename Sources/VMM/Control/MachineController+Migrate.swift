import ControlAPI
import Dispatch
import LinuxSystem
import Machine
import Migration
import Paging
import Transport

/// The migrations of one VMM process: at most one at a time; the last one's report stays.
package final class MigrationSessions: Sendable {
    package let current = Locked<MigrationSource?>(nil)
    /// Signalled when a client has read a completed migration's report, so the VMM can end
    /// without `engram migrate` losing the figures (it waits at most a moment for it).
    package let completionRead = DispatchSemaphore(value: 0)
}

extension MachineController {
    package func migrate(_ body: MigrationRequestBody) throws(VMControlError) -> MigrationStatus {
        let mode = body.mode.flatMap(MigrationMode.init(rawValue:)) ?? .precopy
        var request: MigrationRequest
        do {
            let endpoint = try Endpoint(parsing: String(body.to.dropFirst("tcp://".count)))
            let security = try TransportSecurity.load(TransportSecurity.Options(
                secretFile: body.secretFile, certificate: body.tlsCert, key: body.tlsKey, authority: body.tlsCa,
                insecurePlaintext: body.insecurePlaintext ?? false))
            request = MigrationRequest(destination: endpoint, destinationName: body.to, mode: mode,
                                       maximumDowntimeMilliseconds: body.maxDowntimeMs ?? 300, security: security)
            request.channels = body.channels ?? 1
        } catch {
            throw .invalidRequest(reason: "\(error)")
        }
        guard machine.runState == .running else { throw .invalidState(operation: "migrate", state: machine.runState.rawValue) }
        if mode == .shared, let region = machine.memory.regions.first(where: { !$0.backing.isNamedSharedFile }) {
            throw .invalidRequest(reason: "shared migration needs every region in a named shared file (--ram-file or --shared-maps); region \(region.name) is \(region.backing.kindName)")
        }
        if let fill = lazyFill, !fill.info.complete {
            throw .conflict(reason: "the VM's lazy restore is still filling memory; migrate once it is done")
        }
        let source = MigrationSource(machine: machine, request: request, log: { Diagnostics.note($0) })
        try migrations.current.withLock { (current) throws(VMControlError) in
            if let current, current.isActive { throw .conflict(reason: "a migration to \(current.report.withLock { $0.destination }) is under way") }
            current = source
        }
        do {
            let machine = machine
            let sessions = migrations
            try NamedThread.spawnDetached(name: "engram-migrate", role: .migration) {
                guard source.run() else { return }
                _ = sessions.completionRead.wait(timeout: .now() + .seconds(2))
                machine.finish(.migrated(to: body.to))
            }
        } catch {
            migrations.current.withLock { $0 = nil }
            throw .failed(operation: "migrate", reason: "cannot start the migration thread: \(error)")
        }
        return Self.status(source.report.withLock { $0 })
    }

    /// Refuses `operation` while a migration runs: its passes and its last stop rely on the
    /// dirty log, which a snapshot takes for its own chain (a page written meanwhile went to
    /// neither, and the destination ran with its old copy), and on memory a fork freezes.
    func refuseDuringMigration(_ operation: String) throws(VMControlError) {
        guard let current = migrations.current.withLock({ $0 }), current.isActive else { return }
        throw .conflict(reason: "a migration to \(current.report.withLock { $0.destination }) is under way; \(operation) once it has ended")
    }

    package func migrationStatus() -> MigrationStatus {
        guard let source = migrations.current.withLock({ $0 }) else { return MigrationStatus(status: "idle") }
        let status = Self.status(source.report.withLock { $0 })
        if status.status == "completed" { migrations.completionRead.signal() }
        return status
    }

    package static func status(_ report: MigrationReport) -> MigrationStatus {
        var status = MigrationStatus(status: report.status)
        status.mode = report.mode?.rawValue
        status.to = report.destination
        status.phase = report.phase
        status.passes = report.passes
        status.channels = report.channels
        status.bytesSent = report.bytesSent
        status.pagesSent = report.pagesSent
        status.zeroPagesSent = report.zeroPagesSent
        status.dirtyPagesPerSecond = report.dirtyPagesPerSecond.isFinite ? report.dirtyPagesPerSecond : 0
        status.remainingPages = report.remainingPages
        status.bandwidthBytesPerSecond = report.bandwidthBytesPerSecond
        status.expectedDowntimeMs = report.expectedDowntimeMilliseconds.isFinite ? report.expectedDowntimeMilliseconds : -1
        status.maxDowntimeMs = report.maximumDowntimeMilliseconds
        status.downtimeMs = report.downtimeMilliseconds
        status.totalMs = report.totalMilliseconds
        status.error = report.error
        return status
    }
}
