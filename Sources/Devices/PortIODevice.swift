/// A device reached through x86 port I/O (IN/OUT instructions).
///
/// vCPU threads call `read`/`write` directly from their run loop, so implementations
/// take only brief locks and never block or allocate on these paths.
package protocol PortIODevice: AnyObject, Sendable {
    /// Handles an IN of `size` bytes (1, 2 or 4) from `port`, an absolute port number.
    func read(port: UInt16, size: Int) -> UInt32
    /// Handles an OUT of `size` bytes (1, 2 or 4) of `value` to `port`, an absolute port number.
    func write(port: UInt16, size: Int, value: UInt32)
}
