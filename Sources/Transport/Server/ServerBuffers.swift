import GuestMemory
import LinuxSystem

/// A session's page buffer and frame records, allocated once per connection.
final class ServerBuffers {
    let pages = PageBuffer(pageCount: WireProtocol.maximumReadPages)
    var references: [UInt64]
    var crcs: [UInt32]

    init() {
        references = Array(repeating: 0, count: WireProtocol.maximumFramePages)
        crcs = Array(repeating: 0, count: WireProtocol.maximumFramePages)
    }
}
