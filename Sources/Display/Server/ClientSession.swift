import LinuxSystem

/// What the server's shared threads know of one viewer: the tiles it has not seen yet, whether
/// it holds an incremental request that waits for a change, and how to wake or cut it off.
///
/// `dirty` and `waiting` are guarded by the `ChangeTracker`'s lock; the rest never changes.
/// `@unchecked Sendable` for that reason.
final class ClientSession: @unchecked Sendable {
    let peer: String
    /// Shared with the client's `ViewerStream`, so the number stays this socket's until both are gone.
    let socket: StreamSocket
    /// Signalled when tiles the viewer waits for have changed.
    let wake: EventNotifier
    /// Tiles changed since the viewer last received them; all of them at first.
    var dirty: TileSet
    /// True while the viewer holds an incremental request no dirty tile answers yet.
    var waiting = false

    init(socket: StreamSocket, grid: TileGrid) throws(DisplayError) {
        peer = socket.peer
        self.socket = socket
        do { wake = try EventNotifier() } catch { throw .socket(peer: peer, call: "eventfd", error.errno) }
        dirty = TileSet(grid: grid, full: true)
    }

    /// Cuts the connection: the client's thread wakes from poll, recv or send and ends.
    func disconnect() { socket.shutdown() }
}
