import GuestMemory
import LinuxSystem

/// A session's page buffer and frame records, allocated once per connection.
final class ServerBuffers {
    /// Faulted in as used: a session's first answer must not wait for 4 MiB to be touched.
    let pages = PageBuffer(pageCount: WireProtocol.maximumReadPages, prefault: false)
    var references: [UInt64]
    var crcs: [UInt32]

    init() {
        references = Array(repeating: 0, count: WireProtocol.maximumFramePages)
        crcs = Array(repeating: 0, count: WireProtocol.maximumFramePages)
    }
}
