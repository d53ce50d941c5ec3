import GuestMemory
import LinuxSystem
import SystemPackage

/// Why lazy restore could not be set up; each message names the region or call and what was expected.
package enum PagingError: Error, CustomStringConvertible, Equatable {
    /// The userfaultfd could not be opened or lacks a feature.
    case userfault(UserfaultError)
    /// The machine has a different number of regions than the page source.
    case regionCount(machine: Int, source: Int)
    /// Region `index` of the machine is not the size the page source has for it.
    case regionSize(name: String, index: Int, sizeInBytes: UInt64, sourcePages: UInt64)
    /// A region whose memory userfaultfd cannot fill a 4 KiB page at a time.
    case unsupportedBacking(name: String, kind: String, reason: String)
    /// UFFDIO_REGISTER refused a region, or allows too few operations on it.
    case register(name: String, kind: String, reason: String)
    /// A paging thread could not be started.
    case thread(SystemError)
    /// A system call of the pager's own failed (an eventfd, say).
    case system(SystemError)
    /// `start` was called twice.
    case alreadyStarted
    /// A working set to prefetch that does not fit the memory.
    case workingSet(String)

    package var description: String {
        switch self {
        case .userfault(let error):
            error.description
        case .regionCount(let machine, let source):
            "the machine has \(machine) memory regions but the snapshot has \(source); restore into the snapshot's memory layout"
        case .regionSize(let name, let index, let size, let sourcePages):
            "region \(name) (number \(index)) is \(size) bytes but the snapshot's region \(index) has \(sourcePages) pages (\(sourcePages * PageSize.bytes64) bytes); expected equal sizes"
        case .unsupportedBacking(let name, let kind, let reason):
            "region \(name) (\(kind) backing) cannot be restored lazily: \(reason)"
        case .register(let name, let kind, let reason):
            "cannot register region \(name) (\(kind) backing) with userfaultfd: \(reason); lazy restore needs memfd, tmpfs or anonymous memory"
        case .thread(let error):
            "cannot start a paging thread: \(error)"
        case .system(let error):
            "the lazy pager: \(error)"
        case .alreadyStarted:
            "the lazy pager was already started"
        case .workingSet(let message):
            message
        }
    }
}
