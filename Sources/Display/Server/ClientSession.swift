import GuestMemory
import Glibc

/// What the server's shared threads know of one viewer: the tiles it has not seen yet, whether
/// it holds an incremental request that waits for a change, and how to wake or cut it off.
///
/// `dirty` and `waiting` are guarded by the `ChangeTracker`'s lock; the rest never changes.
/// `@unchecked Sendable` for that reason.
final class ClientSession: @unchecked Sendable {
    let peer: String
    /// Shared with the client's `SocketStream`, so the number stays this socket's until both are gone.
    let descriptor: OwnedFileDescriptor
    /// Signalled when tiles the viewer waits for have changed.
    let wake: WakeEvent
    /// Tiles changed since the viewer last received them; all of them at first.
    var dirty: TileSet
    /// True while the viewer holds an incremental request no dirty tile answers yet.
    var waiting = false

    init(peer: String, descriptor: OwnedFileDescriptor, grid: TileGrid) throws(DisplayError) {
        self.peer = peer
        self.descriptor = descriptor
        wake = try WakeEvent()
        dirty = TileSet(grid: grid, full: true)
    }

    /// Cuts the connection: the client's thread wakes from poll, recv or send and ends.
    func disconnect() { _ = shutdown(descriptor.rawValue, CInt(SHUT_RDWR)) }
}
