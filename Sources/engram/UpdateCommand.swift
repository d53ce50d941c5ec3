import ArgumentParser
import ControlAPI
import FoundationEssentials
import Glibc
import Migration
import SnapshotFormat
import VMM

/// `engram update SOCKET [--binary PATH]`: replaces the running VMM binary in place (PUT /vm/update)
/// and waits until the new one runs the guest.
struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Replace a running VM's Engram binary without stopping the guest or copying its memory.",
        discussion: """
            The VMM checks the binary (it must answer `version --json` with this VM's state version), pauses the guest, \
            saves its state to the state path, and execs the binary with guest memory and the control socket kept open; \
            the new process maps the same memory and resumes the guest. With --mode transfer the new binary starts beside \
            the running VMM, maps guest memory and makes its VM while the guest runs, and only then is the guest paused and \
            handed over on a socket (the VM continues under the new process's pid). Prints GET /vm/update once the new VMM answers. \
            Guest RAM must be shared (memfd or file), not --anonymous-memory or restore --memory map.
            """
    )

    @Argument(help: "The VM's --api-socket path.") var socket: String
    @Option(help: "The new Engram executable (default: the path the VMM was started from).") var binary: String?
    @Option(help: "Where the machine state is handed over (default: SOCKET.update).") var statePath: String?
    @Option(help: "Seconds to wait for the new VMM to answer.") var timeout = 60
    @Option(help: ArgumentHelp(
        "exec (replace this process, same pid) or transfer (start the new VMM first; the guest pauses only once it is ready).",
        valueName: "mode"))
    var mode: UpdateMode = .exec

    func run() throws {
        let request = UpdateRequest(binary: binary.map(PathName.absolute), statePath: statePath.map(PathName.absolute), mode: mode)
        let answer = try APICall.send(socket: socket, route: .update, json: request)
        let decoder = JSONCoding.makeDecoder()
        guard let accepted = try? decoder.decode(UpdateAccepted.self, from: Data(answer)) else {
            throw CommandFailure("the VMM answered PUT /vm/update with \(APICall.errorMessage(in: answer))")
        }
        let (status, body) = try waitForEnd(of: accepted, decoder: decoder)
        guard let last = status.last, last.status == "completed" else {
            throw CommandFailure(status.last?.error ?? "update \(accepted.update) failed")
        }
        APICall.printAnswer(body)
        let downtime = last.downtimeMilliseconds.map { "\(Double(Int($0 * 10)) / 10) ms" } ?? "unknown"
        Diagnostics.note("updated to \(last.binary) (version \(status.version), pid \(status.pid)); the guest was paused for \(downtime)")
    }

    /// Asks GET /vm/update until this update has ended. While the old process execs, the
    /// connection waits in the socket's backlog for the new one; if nothing listens any more,
    /// the new process failed and said why on the VM's standard error.
    private func waitForEnd(of accepted: UpdateAccepted, decoder: JSONDecoder) throws -> (UpdateStatus, [UInt8]) {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            let reply: (status: Int, body: [UInt8])
            do {
                reply = try ControlClient(socketPath: socket, timeoutSeconds: Int64(timeout)).send(route: .updateStatus)
            } catch .closedBeforeReply {
                continue  // accepted by the old process just before it stopped accepting
            } catch .connectionRefused, .socketMissing {
                throw CommandFailure(vmmGone(accepted))
            } catch {
                throw CommandFailure(error.description)
            }
            if let status = try? decoder.decode(UpdateStatus.self, from: Data(reply.body)),
               let last = status.last, last.update == accepted.update, status.status != "updating" {
                return (status, reply.body)
            }
            usleep(2000)
        }
        throw CommandFailure("update \(accepted.update) did not finish within \(timeout) s; see the VM's standard error")
    }

    /// What to tell the user when the VMM exited during the update.
    private func vmmGone(_ accepted: UpdateAccepted) -> String {
        let saved = (try? SnapshotChain(path: accepted.statePath)) != nil
        return saved
            ? "the new VMM could not continue the guest and exited; it saved the guest in \(accepted.statePath): "
                + "`engram restore \(accepted.statePath)` brings it back (its error is on the VM's standard error)"
            : "the VMM exited during the update without saving the guest (its error is on the VM's standard error)"
    }
}

extension UpdateMode: ExpressibleByArgument {}
