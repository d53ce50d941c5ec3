import GuestMemory
import LinuxSystem
import Machine
import Migration

/// The first step of a VMM started beside a running one (a transfer-mode update, a fork's
/// child): take the guest memory from `prepare`, make the VM, memory slots and vCPUs around it,
/// and say `ready`, all while the guest still runs in the other process.
enum TransferReadiness {
    /// Why the VM could not get ready, in words for the other VMM.
    struct Failure: Error { let reason: String }

    /// Receives `prepare` on `link`, maps its regions with `map` (given each region with its
    /// descriptor, owned from then on), makes the VM and warms the state's section coding, runs
    /// `beforeReady` (given the warm-up's sample machine and the control socket that came with
    /// the memory, whose descriptor it then owns) and answers `ready`.
    static func prepare(
        on link: TransferLink, timeoutMilliseconds: Int, map: (InheritedRegion, OwnedFileDescriptor) throws -> GuestRegion,
        beforeReady: (_ sample: MachineStateRecord, _ controlSocket: InheritedSocket?) throws -> Void = { _, _ in }
    ) throws(Failure) -> (GuestMemoryMap, MachineShell) {
        do {
            let (message, descriptors) = try link.receive(timeoutMilliseconds: timeoutMilliseconds)
            guard case .prepare(let preparation) = message else { throw Failure(reason: "expected the guest memory first; got \(message)") }
            var regions: [GuestRegion] = []
            for region in preparation.regions {
                guard region.descriptor >= 0, Int(region.descriptor) < descriptors.count else {
                    throw Failure(reason: "region \(region.name) names descriptor \(region.descriptor); \(descriptors.count) arrived")
                }
                regions.append(try map(region, descriptors[Int(region.descriptor)]))
            }
            let memory = try Machine.restoredMemory(regions)
            let prepared = try Machine.prepareShell(memory: memory)
            try prepared.waitForSlots()
            let shell = try prepared.creatingCPUs(preparation.cpuCount)
            let sample = shell.warmUpStateCoding()
            var controlSocket: InheritedSocket? = nil
            if let socket = preparation.controlSocket {
                guard socket.descriptor >= 0, Int(socket.descriptor) < descriptors.count else {
                    throw Failure(reason: "the control socket names descriptor \(socket.descriptor); \(descriptors.count) arrived")
                }
                controlSocket = InheritedSocket(path: socket.path, descriptor: descriptors[Int(socket.descriptor)].release())
            }
            try beforeReady(sample, controlSocket)
            try link.send(.ready)
            return (memory, shell)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: "\(error)")
        }
    }
}
