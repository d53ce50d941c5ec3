/// A device reached through memory-mapped I/O: a window of guest-physical addresses that no RAM
/// backs, so each access exits to the vCPU thread.
///
/// vCPU threads call `read`/`write` from their run loop: implementations take one brief lock and
/// never block or allocate there.
package protocol MMIODevice: AnyObject, Sendable {
    /// A read of `size` bytes (1, 2, 4 or 8) at `offset` into the device's window.
    func read(offset: UInt64, size: Int) -> UInt64
    /// A write of the low `size` bytes of `value` at `offset` into the device's window.
    func write(offset: UInt64, size: Int, value: UInt64)
}
