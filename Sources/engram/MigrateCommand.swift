import ArgumentParser
import ControlAPI
import Glibc
import FoundationEssentials
import VMM

/// `engram migrate SOCKET --to tcp://HOST:PORT`: asks a running VM to migrate (PUT /vm/migrate)
/// and follows it (GET /vm/migrate) until it completes or fails.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Live-migrate a running VM to a destination waiting in `engram receive`.",
        discussion: """
            precopy copies memory while the guest runs, pass after pass of what it dirtied, then stops it for the rest \
            (within --max-downtime-ms when the dirty rate allows). postcopy stops it at once, moves the state, and the \
            destination fetches pages on first touch while the rest streams. shared moves only the state: both VMMs map \
            the same RAM files (--ram-file or --shared-maps, same host or a shared memory file system). Prints progress \
            on standard error and the outcome on standard output; exit status 0 once the guest runs at the destination.
            """
    )

    @Argument(help: "The source VM's control socket.") var socket: String
    @Option(help: "The destination: tcp://HOST:PORT of `engram receive`.") var to: String
    @Option(help: "precopy, postcopy or shared.") var mode = "precopy"
    @Option(help: "Pre-copy: stop the guest once the rest fits in this many milliseconds.") var maxDowntimeMs: Double = 300
    @Option(help: "Pre-copy: send pages over this many connections beside the control one, each with a thread at both ends (1: on the control connection).")
    var channels = 1
    @OptionGroup(title: "Security (read by the source VMM; the destination's must match)") var security: TransportSecurityOptions
    @Flag(help: "Return once the migration has started.") var noWait = false

    func validate() throws {
        guard to.hasPrefix("tcp://") else { throw ValidationError("--to must be tcp://HOST:PORT") }
        guard ["precopy", "postcopy", "shared"].contains(mode) else { throw ValidationError("--mode must be precopy, postcopy or shared") }
        guard (1...16).contains(channels) else { throw ValidationError("--channels must be 1 to 16") }
        guard channels == 1 || mode == "precopy" else { throw ValidationError("--channels: only a pre-copy migration sends pages over several connections") }
        if let conflict = security.options.conflict { throw ValidationError(conflict) }
    }

    func run() throws {
        let options = security.options
        security.warnIfPlaintext()
        let body = MigrationRequestBody(
            to: to, mode: mode, maxDowntimeMs: maxDowntimeMs, secretFile: options.secretFile, tlsCert: options.certificate, tlsKey: options.key,
            tlsCa: options.authority, insecurePlaintext: options.insecurePlaintext ? true : nil, channels: channels > 1 ? channels : nil)
        var status = try decode(try APICall.send(socket: socket, route: .migrate, json: body))
        if noWait { return APICall.printAnswer(try JSONCoding.makeEncoder().encode(status).map { $0 }) }
        var last = (phase: "", passes: UInt32(0))
        while status.status == "active" {
            // A line when the phase or the pass changes, not on every poll.
            if let phase = status.phase, phase != last.phase || status.passes != last.passes {
                Diagnostics.note(progressLine(status))
                last = (phase, status.passes)
            }
            usleep(100_000)
            do {
                status = try decode(try APICall.send(socket: socket, route: .migrationStatus))
            } catch {
                // The source VMM ends only once the destination runs the guest.
                print("completed: the source VMM has ended; the guest runs at \(to)")
                Diagnostics.note(summaryLine(status, final: false))
                return
            }
        }
        APICall.printAnswer(Array(try JSONCoding.makeEncoder().encode(status)))
        Diagnostics.note(summaryLine(status, final: true))
        if status.status != "completed" { throw CommandFailure(status.error ?? "the migration \(status.status)") }
    }

    private func progressLine(_ status: MigrationStatus) -> String {
        let sent = String(format1: Double(status.bytesSent) / 1_048_576)
        return "migrate: \(status.phase ?? ""), pass \(status.passes), \(sent) MiB sent, \(status.remainingPages) pages dirty, " +
            "expected downtime \(String(format1: status.expectedDowntimeMs)) ms"
    }

    /// The figures QEMU's `info migrate` ends with: total time, downtime as the guest saw it,
    /// bytes and passes (the last ones seen when the source ended before answering again).
    private func summaryLine(_ status: MigrationStatus, final: Bool) -> String {
        let total = status.totalMs.map { String(format1: $0) + " ms" } ?? "unknown"
        let downtime = status.downtimeMs.map { String(format1: $0) + " ms" } ?? "unknown"
        return "migrate: \(final ? status.status : "last seen \(status.phase ?? status.status)"): total \(total), downtime \(downtime), " +
            "\(String(format1: Double(status.bytesSent) / 1_048_576)) MiB in \(status.passes) passes (\(status.pagesSent) pages, \(status.zeroPagesSent) zero)"
    }

    private func decode(_ bytes: [UInt8]) throws -> MigrationStatus {
        do { return try JSONCoding.makeDecoder().decode(MigrationStatus.self, from: Data(bytes)) } catch {
            throw CommandFailure("\(socket): the migration status does not decode: \(error)")
        }
    }
}

extension String {
    /// One decimal place.
    init(format1 value: Double) {
        guard value.isFinite else { self = "-"; return }
        let tenths = (value * 10).rounded() / 10
        self = "\(tenths)"
    }
}
