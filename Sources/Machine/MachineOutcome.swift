/// How a machine's run ended: the message the VMM prints and its exit status.
package enum MachineOutcome: Sendable, Equatable {
    case poweredOff
    case reset
    case shutdownRequested
    case quitFromConsole
    case terminatedBySignal(Int32)
    case internalError(vcpu: UInt32, suberror: UInt32, rip: UInt64?)
    case tripleFault(vcpu: UInt32, rip: UInt64?)
    case entryFailure(vcpu: UInt32, reason: UInt64, rip: UInt64?)
    case unhandledExit(vcpu: UInt32, reason: UInt32, rip: UInt64?)
    case runFailure(vcpu: UInt32, message: String)
    /// Guest memory could not be delivered (a lazy restore's page was unreadable or corrupt):
    /// the VM stops rather than run on wrong memory.
    case memoryFailure(String)
    /// The guest moved to another VMM (live migration); it runs there now.
    case migrated(to: String)

    /// 0 for endings the guest or user asked for; 1 for failures.
    package var exitStatus: Int32 {
        switch self {
        case .poweredOff, .reset, .shutdownRequested, .quitFromConsole, .terminatedBySignal, .migrated: 0
        default: 1
        }
    }

    package var message: String {
        func at(_ rip: UInt64?) -> String { rip.map { " at RIP 0x" + String($0, radix: 16) } ?? "" }
        switch self {
        case .poweredOff: return "the guest powered off"
        case .reset: return "the guest asked for a reset; the VM ends here (Engram does not reboot guests)"
        case .shutdownRequested: return "shut down through the control API"
        case .quitFromConsole: return "quit from the console (Ctrl-A x)"
        case .terminatedBySignal(let signal): return "terminated by signal \(signal)"
        case .internalError(let vcpu, let suberror, let rip):
            let kind = suberror == 1 ? "emulation failure" : "suberror \(suberror)"
            return "KVM internal error (\(kind)) on vCPU \(vcpu)\(at(rip)): KVM could not run the guest's instruction"
        case .tripleFault(let vcpu, let rip): return "the guest triple-faulted on vCPU \(vcpu)\(at(rip))"
        case .entryFailure(let vcpu, let reason, let rip):
            return "VM entry failed on vCPU \(vcpu)\(at(rip)) (hardware reason 0x\(String(reason, radix: 16)))"
        case .unhandledExit(let vcpu, let reason, let rip): return "unhandled KVM exit \(reason) on vCPU \(vcpu)\(at(rip))"
        case .runFailure(let vcpu, let message): return "vCPU \(vcpu) failed: \(message)"
        case .memoryFailure(let message): return "guest memory failed; the VM is stopped: \(message)"
        case .migrated(let destination): return "migrated to \(destination); the guest runs there now"
        }
    }
}
