import LinuxSystem

/// Children started ahead of a fork (PUT /vm/fork/reserve), ready and waiting: each mapped the
/// VM's memory copy-on-write and made its KVM VM, memory slots and vCPUs, so a fork that takes
/// them only hands each the machine. That leaves process start and KVM set-up (about 20 ms of
/// CPU per child here) out of the fork's time, as platforms keep warm VMMs.
///
/// A reserved child ends by itself when this VMM does (its socket closes); a live update or the
/// end of this process drops the reserve.
package final class ForkReserve: Sendable {
    private let children = Locked<[ForkChildProcess]>([])

    package init() {}

    var count: Int { children.withLock { $0.count } }

    func add(_ ready: [ForkChildProcess]) { children.withLock { $0 += ready } }

    /// Up to `count` reserved children, oldest first, taken out of the reserve.
    func take(_ count: Int) -> [ForkChildProcess] {
        children.withLock { reserved in
            let taken = Array(reserved.prefix(count))
            reserved.removeFirst(taken.count)
            return taken
        }
    }
}
