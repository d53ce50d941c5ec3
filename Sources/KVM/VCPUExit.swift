/// Why KVM_RUN returned to user space, decoded from the shared run structure.
package enum VCPUExit: Sendable, Equatable {
    /// IN from `port`: the handler fills `count` items of `size` bytes with `setIOData`.
    case ioIn(port: UInt16, size: Int, count: Int)
    /// OUT to `port`: `count` items of `size` bytes readable with `ioData`.
    case ioOut(port: UInt16, size: Int, count: Int)
    /// A read of unbacked guest-physical memory: answer with `setMMIOData`.
    case mmioRead(address: UInt64, size: Int)
    /// A write to unbacked guest-physical memory.
    case mmioWrite(address: UInt64, size: Int, value: UInt64)
    /// HLT reached user space (only without an in-kernel irqchip).
    case halt
    /// The guest triple-faulted.
    case shutdown
    /// The guest asked for power-off, reset or crash (KVM_EXIT_SYSTEM_EVENT).
    case systemEvent(type: UInt32)
    /// KVM could not run the guest: its emulator failed or an exit could not be delivered.
    case internalError(suberror: UInt32)
    /// VM entry failed with a hardware reason.
    case failEntry(reason: UInt64)
    /// KVM_RUN was interrupted by a signal or `immediate_exit`: check for pause or stop.
    case interrupted
    /// An exit reason Engram does not handle.
    case unhandled(reason: UInt32)
}
