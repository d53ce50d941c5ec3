import ControlAPI
import Glibc
import LinuxSystem
import Machine
import Migration

/// What a VMM process knows about live updates: the settings a new binary must continue
/// (control socket, console log, terminal), whether an update is under way, and how the last
/// one went. One per process; the new process starts from what the handoff told it.
package final class LiveUpdateSession: Sendable {
    /// The control socket's path (updates are asked for through it).
    let apiSocket: String?
    let consoleLogPath: String?
    /// This process's executable, the default binary of the next update.
    let binary: String
    /// Where the update's exec runs: on the main thread.
    let mainThread = MainThreadExec()

    private struct State {
        var updating = false
        var attempts: Int
        var completed: Int
        var last: UpdateResult?
        var server: ControlServer?
        var console: Console?
    }

    private let state: Locked<State>

    init(apiSocket: String?, consoleLogPath: String?, binary: String = ProcessImage.executablePath(),
         attempts: Int = 0, completed: Int = 0, last: UpdateResult? = nil) {
        self.apiSocket = apiSocket
        self.consoleLogPath = consoleLogPath
        self.binary = binary
        state = Locked(State(attempts: attempts, completed: completed, last: last))
    }

    /// The control server and console of this process, which the handoff must describe.
    func attach(server: ControlServer?, console: Console) {
        state.withLock {
            $0.server = server
            $0.console = console
        }
    }

    var server: ControlServer? { state.withLock { $0.server } }
    var terminalMode: [UInt8]? { state.withLock { $0.console?.terminalModeToRestore } }

    /// Whether an update was accepted and has not ended in this process.
    var isUpdating: Bool { state.withLock { $0.updating } }

    /// Claims the next update number; nil if one is under way.
    func begin() -> (update: Int, completed: Int)? {
        state.withLock { state in
            guard !state.updating else { return nil }
            state.updating = true
            state.attempts += 1
            return (state.attempts, state.completed)
        }
    }

    /// The update under way ended in this process (it failed, or it never got to exec).
    func ended(_ result: UpdateResult) {
        state.withLock { state in
            state.updating = false
            state.last = result
        }
    }

    func status(version: String) -> UpdateStatus {
        state.withLock { state in
            UpdateStatus(
                status: state.updating ? "updating" : (state.last?.status ?? "idle"), pid: getpid(), version: version,
                binary: binary, updatesCompleted: state.completed, last: state.last)
        }
    }
}
