import FoundationEssentials
import LinuxSystem
import Machine

/// What the two VMMs of a transfer-mode live update say to each other over their socket pair
/// (QEMU's cpr-transfer): the running VMM hands over guest memory first and the new one makes
/// its VM, vCPUs and memory slots while the guest runs; only then is the guest paused and the
/// rest (state, devices, control socket) handed over.
package enum TransferMessage: Codable, Sendable, Equatable {
    /// Old → new, with each region's descriptor attached in `regions` order.
    case prepare(TransferPreparation)
    /// New → old: the VM is ready; send the state.
    case ready
    /// Old → new: the paused machine, with `handoff.descriptors` attached in that order.
    case handoff(UpdateHandoff)
    /// New → old: the guest runs here now, after this downtime.
    case running(downtimeMilliseconds: Double)
    /// Either way: the sender gives up, and why.
    case failed(String)
    /// A forking VM → one of its children (after `prepare` and `ready`): the machine as it was
    /// paused, with the child's own devices, and where the child serves its control API.
    case fork(ForkChildPlan)
}

/// What a fork's child needs besides the memory it mapped at `prepare`.
package struct ForkChildPlan: Codable, Sendable, Equatable {
    /// The child's number among its siblings, from 0.
    package var index: Int
    /// The parent's state at the fork (`MachineStateRecord.encodedSections`, encoded once for
    /// every child); the child gives it its own devices (`MachineStateRecord.forkChild`).
    package var machine: Data
    /// The child's own disks, taps and vsock, as `engram restore` takes them.
    package var disks: [String]
    package var networks: [String]
    package var vsock: String?
    package var apiSocket: String
    /// Where the child's serial console goes (its input comes through PUT /vm/keyboard).
    package var consoleLog: String?
    /// CLOCK_MONOTONIC nanoseconds when the parent paused, for the child's report.
    package var pausedAtNanoseconds: UInt64
    /// The fork's base as it will be written (a full snapshot) and that file's id: the child's
    /// diffs build on it.
    package var baseSnapshot: String? = nil
    package var baseSnapshotID: [UInt8]? = nil

    package init(
        index: Int, machine: Data, disks: [String], networks: [String], vsock: String?, apiSocket: String, consoleLog: String?,
        pausedAtNanoseconds: UInt64, baseSnapshot: String? = nil, baseSnapshotID: [UInt8]? = nil
    ) {
        self.baseSnapshot = baseSnapshot
        self.baseSnapshotID = baseSnapshotID
        self.index = index
        self.machine = machine
        self.disks = disks
        self.networks = networks
        self.vsock = vsock
        self.apiSocket = apiSocket
        self.consoleLog = consoleLog
        self.pausedAtNanoseconds = pausedAtNanoseconds
    }
}

/// What the new VMM needs to make ready before the guest pauses.
package struct TransferPreparation: Codable, Sendable, Equatable {
    package var cpuCount: Int
    /// The guest memory regions; `descriptor` is each one's index among the attached descriptors.
    package var regions: [InheritedRegion]
    /// A transfer-mode update's control socket (`descriptor`: its index among the attached
    /// descriptors), so the new VMM has its server ready, not yet accepting, before the guest
    /// pauses; absent for a fork's child and from older binaries.
    package var controlSocket: InheritedSocket? = nil

    package init(cpuCount: Int, regions: [InheritedRegion], controlSocket: InheritedSocket? = nil) {
        self.cpuCount = cpuCount
        self.regions = regions
        self.controlSocket = controlSocket
    }
}

extension TransferMessage {
    /// Encodes and decodes a handoff holding `machine` (a sample: `MachineStateRecord.warmUpCoding`)
    /// once, so the first real one, inside the guest's pause, does not pay the runtime's lazy
    /// type and conformance lookups for the handoff's types (0.5–1 ms here).
    package static func warmUpCoding(machine: MachineStateRecord) {
        var handoff = UpdateHandoff(
            update: 1, updatesCompleted: 0, fromVersion: "warm-up", binary: "/", statePath: "/", pausedAtNanoseconds: 0,
            saveMilliseconds: 0, resume: true, regions: [InheritedRegion(name: "ram", sizeInBytes: 1 << 30, backing: .memfd, descriptor: 0)],
            controlSocket: InheritedSocket(path: "/", descriptor: 1), consoleLogPath: nil, terminalMode: [0], machine: machine)
        handoff.machineInSections = true
        handoff.keep([InheritedDevice(device: "blk0", descriptors: [InheritedDescriptor(name: "blk0.disk", descriptor: 2)], state: nil)])
        for message in [TransferMessage.handoff(handoff), .running(downtimeMilliseconds: 1)] {
            guard let encoded = try? JSONEncoder().encode(message) else { continue }
            _ = try? JSONDecoder().decode(TransferMessage.self, from: encoded)
        }
    }
}

/// A `DescriptorChannel` carrying `TransferMessage`s as JSON.
package struct TransferLink: Sendable {
    package let channel: DescriptorChannel

    package init(_ channel: DescriptorChannel) { self.channel = channel }

    package func send(_ message: TransferMessage, descriptors: [CInt] = []) throws(LiveUpdateError) {
        let payload: [UInt8]
        do { payload = Array(try JSONEncoder().encode(message)) } catch { throw .transfer(reason: "cannot encode a message: \(error)") }
        do { try channel.send(payload, descriptors: descriptors) } catch { throw .transfer(reason: "\(error)") }
    }

    /// The next message and its descriptors (owned by the caller), waiting at most `timeoutMilliseconds`.
    package func receive(timeoutMilliseconds: Int) throws(LiveUpdateError) -> (TransferMessage, [OwnedFileDescriptor]) {
        let received: (payload: [UInt8], descriptors: [OwnedFileDescriptor])
        do { received = try channel.receive(timeoutMilliseconds: timeoutMilliseconds) } catch { throw .transfer(reason: "\(error)") }
        do { return (try JSONDecoder().decode(TransferMessage.self, from: Data(received.payload)), received.descriptors) } catch {
            throw .transfer(reason: "\(channel.peer) sent a message that is not a transfer message")
        }
    }
}

extension UpdateHandoff {
    /// The handoff with every descriptor number the sender named (`descriptors`, in order)
    /// replaced by the one that arrived in its place here.
    package func receiving(_ arrived: [OwnedFileDescriptor]) throws(LiveUpdateError) -> UpdateHandoff {
        if let problem = countsProblem { throw .transfer(reason: "the handoff's \(problem)") }
        let sent = descriptors
        guard sent.count == arrived.count else {
            throw .transfer(reason: "the handoff names \(sent.count) descriptors; \(arrived.count) arrived")
        }
        var map: [CInt: CInt] = [:]
        for (old, new) in zip(sent, arrived) { map[old] = new.release() }
        let here = { (old: CInt) in map[old] ?? -1 }
        var copy = self
        copy.regions = regions.map { var region = $0; region.descriptor = here($0.descriptor); return region }
        copy.controlSocket = controlSocket.map { InheritedSocket(path: $0.path, descriptor: here($0.descriptor)) }
        copy.disks = disks?.map { InheritedDescriptor(name: $0.name, descriptor: here($0.descriptor)) }
        copy.devices = devices?.map { device in
            InheritedDevice(device: device.device, descriptors: device.descriptors.map { InheritedDescriptor(name: $0.name, descriptor: here($0.descriptor)) },
                            state: device.state.map(here))
        }
        return copy
    }
}
