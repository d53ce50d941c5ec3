import ControlAPI
import FoundationEssentials
import Glibc
import LinuxSystem
import Machine
import SnapshotFormat
import Migration

/// One child of a fork as the parent sees it: the process started beside the parent, the
/// socket pair to it, and how far it got.
struct ForkChildProcess {
    private(set) var index: Int
    private(set) var socket: String
    private(set) var consoleLog: String
    private(set) var pid: pid_t?
    private var link: TransferLink?
    private(set) var error: String?
    private var state = Stage.starting

    private enum Stage { case starting, ready, handed, running, failed, ended }

    /// How long a child may take to get ready, and then to run.
    static let timeoutMilliseconds = 60_000
    /// How long a ready child waits for the machine: a reserved one, until the next fork.
    static let reserveWaitMilliseconds = 365 * 86_400_000

    init(index: Int, plan: ForkPlan) {
        self.index = index
        socket = plan.socket(index)
        consoleLog = plan.consoleLog(index)
    }

    /// A child started ahead of a fork (PUT /vm/fork/reserve): its place among the children is
    /// given when a fork takes it.
    init(reserved number: Int) {
        index = number
        socket = ""
        consoleLog = ""
    }

    /// A reserved child becomes child `index` of the fork `plan`.
    mutating func assign(_ index: Int, plan: ForkPlan) {
        self.index = index
        socket = plan.socket(index)
        consoleLog = plan.consoleLog(index)
    }

    var isReady: Bool { state == .ready }
    var isRunning: Bool { state == .running }

    /// Starts `engram fork-child` and hands it the guest memory (each region's descriptor).
    mutating func start(cpuCount: Int, regions: [InheritedRegion], descriptors: [CInt]) {
        do {
            let (channel, theirs) = try DescriptorChannel.pair(peer: "fork child \(index)")
            let link = TransferLink(channel)
            self.link = link
            pid = try ProcessImage.spawnBeside(
                ProcessImage.executablePath(), arguments: ["fork-child", "--descriptor", "3"], handing: theirs.rawValue, as: 3,
                withoutConsole: true)
            close(theirs.release())
            let numbered = regions.enumerated().map { index, region in
                var numbered = region
                numbered.descriptor = CInt(index)
                return numbered
            }
            try link.send(.prepare(TransferPreparation(cpuCount: cpuCount, regions: numbered)), descriptors: descriptors)
        } catch {
            fail("\(error)")
        }
    }

    mutating func awaitReady() {
        guard state == .starting, let link else { return }
        do {
            let (answer, _) = try link.receive(timeoutMilliseconds: Self.timeoutMilliseconds)
            switch answer {
            case .ready: state = .ready
            case .failed(let reason): fail(reason)
            default: fail("answered \(answer) instead of ready")
            }
        } catch {
            fail("\(error)")
        }
    }

    /// Sends the paused machine, as this child starts it.
    mutating func hand(_ machine: Data, devices: ForkChildDevices, pausedAt: UInt64, base: (path: String, id: SnapshotID)?) {
        guard state == .ready, let link else { return }
        do {
            try link.send(.fork(ForkChildPlan(
                index: index, machine: machine, disks: devices.disks ?? [], networks: devices.nets ?? [], vsock: devices.vsock,
                apiSocket: socket, consoleLog: consoleLog, pausedAtNanoseconds: pausedAt, baseSnapshot: base?.path, baseSnapshotID: base?.id.bytes)))
            state = .handed
        } catch {
            fail("\(error)")
        }
    }

    mutating func awaitRunning() {
        guard state == .handed, let link else { return }
        do {
            let (answer, _) = try link.receive(timeoutMilliseconds: Self.timeoutMilliseconds)
            switch answer {
            case .running: state = .running
            case .failed(let reason): fail(reason)
            default: fail("answered \(answer) instead of running")
            }
        } catch {
            fail("\(error)")
        }
    }

    /// A child that started, ended because a sibling failed (on_failure: end).
    mutating func endStarted() {
        end()
        state = .ended
    }

    /// Ends the process (a child that failed, or before any child got the machine).
    func end() {
        guard let pid else { return }
        kill(pid, SIGKILL)
    }

    private mutating func fail(_ reason: String) {
        error = reason
        state = .failed
        end()
    }

    var info: ForkChildInfo {
        let status = switch state {
        case .running: "running"
        case .ended: "ended"
        default: "failed"
        }
        return ForkChildInfo(index: index, pid: pid, apiSocket: socket, consoleLog: consoleLog, status: status, error: error)
    }

    /// Ends every child (the fork was refused after they started) and reaps them.
    static func end(_ children: [ForkChildProcess]) {
        for child in children { child.end() }
        reapInBackground(children.compactMap(\.pid))
    }

    /// Waits for the children to end, one after the other, on a thread of its own (they are this
    /// process's children: each must be reaped).
    static func reapInBackground(_ pids: [pid_t]) {
        guard !pids.isEmpty else { return }
        let reap: @Sendable () -> Void = { for pid in pids { _ = Subprocess.waitForExit(pid) } }
        if (try? NamedThread.spawnDetached(name: "fork-reaper", role: .control, reap)) == nil { Diagnostics.note("cannot start a thread to reap the fork's children") }
    }
}
