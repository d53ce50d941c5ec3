import LinuxSystem
/// A session's page buffer and frame records, allocated once per connection.
@safe
final class ServerBuffers {
    private let memory: UnsafeMutableRawBufferPointer
    var references: [UInt64]
    var crcs: [UInt32]

    init() {
        unsafe memory = UnsafeMutableRawBufferPointer.allocate(byteCount: WireProtocol.maximumReadPages * PageSize.bytes, alignment: 4096)
        references = Array(repeating: 0, count: WireProtocol.maximumFramePages)
        crcs = Array(repeating: 0, count: WireProtocol.maximumFramePages)
    }

    deinit { unsafe memory.deallocate() }

    func pages(_ count: Int) -> UnsafeMutableRawBufferPointer {
        // SAFETY: count is at most maximumReadPages, so the slice lies inside the allocation.
        unsafe UnsafeMutableRawBufferPointer(rebasing: memory[0..<count * PageSize.bytes])
    }
}
