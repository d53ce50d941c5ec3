/// What a thread does, which decides the system calls its seccomp filter allows. Every thread
/// Engram starts names its role (`NamedThread.spawn`); the role's number travels in the
/// filter's denial so the report can name it.
package enum ThreadRole: UInt16, CaseIterable, Sendable, CustomStringConvertible {
    /// The main thread, the control API's threads and the helpers that orchestrate snapshots,
    /// migrations, updates and forks: everything Engram does, and nothing else.
    case control = 0
    /// Runs a vCPU: KVM_RUN and the exits handled on the vCPU's thread.
    case vcpu
    /// Serves virtqueues and the host side of devices (disk files, taps, vsock sockets).
    case deviceIO
    /// Answers guest page faults and fills memory (userfaultfd, snapshot files, page servers).
    case pageFault
    /// One migration: the source's sender and postcopy page server, the destination's handshakes.
    case migration
    /// One `engram serve` connection.
    case pageServer
    /// The VNC server's threads.
    case display

    package var description: String {
        switch self {
        case .control: "control"
        case .vcpu: "vcpu"
        case .deviceIO: "device I/O"
        case .pageFault: "page fault"
        case .migration: "migration"
        case .pageServer: "page server"
        case .display: "display"
        }
    }
}
