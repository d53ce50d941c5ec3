/// The constants of the page protocol, version 1 (docs/PROTOCOL.md).
package enum WireProtocol {
    package static let magic = Array("ENGRAMPS".utf8)
    package static let version: UInt32 = 1
    package static let nonceSize = 32
    package static let proofSize = 32
    /// Pages one READ may ask for.
    package static let maximumReadPages = 1024
    /// Pages one PAGES frame may carry.
    package static let maximumFramePages = 1024
    /// Pages a LIST frame from the server side carries at most.
    static let listFramePages = 256
    /// Pages one LIST may name (and a working set may hold).
    package static let maximumListPages = 1 << 20
    /// The largest frame a client may send (a LIST of the most pages, or a working set).
    static let maximumRequestLength = 64 + maximumListPages * 8
    /// The largest frame a server may send outside PAGES (a manifest: regions' bitmaps and the state).
    static let maximumReplyLength = 512 << 20
    /// An error message's longest text.
    static let maximumMessageLength = 1024
    /// How the ERROR a full server sends in place of HELLO begins.
    package static let busyMessage = "busy"
    /// Seconds a new connection has to finish the handshake.
    static let handshakeTimeoutMilliseconds = 5000
}

/// The type byte of a frame.
package enum FrameType: UInt8, Sendable {
    case hello = 1
    case auth = 2
    case welcome = 3
    case error = 15
    case manifestRequest = 16
    case manifest = 17
    case read = 18
    case pages = 19
    case list = 20
    case getWorkingSet = 22
    case workingSet = 23
    case putWorkingSet = 24
    case ok = 25
    /// The connection carries bulk transfers (background fill, prefetch): served at lower priority.
    case background = 26

    // Migration protocol (docs/MIGRATION.md); PAGES frames are shared with the page protocol.
    /// Source → destination: what is coming (mode, regions, shared files).
    case migrationPlan = 32
    /// Destination → source: memory is ready to receive.
    case migrationReady = 33
    /// Source → destination: pages that are zero now (u32 count, count × u64 references).
    case zeroPages = 34
    /// Source → destination: a pre-copy pass ended (u32 pass, u64 pages sent in it).
    case passEnd = 35
    /// Source → destination: the paused machine's state; the guest continues at the destination.
    case machineState = 36
    /// Destination → source: the guest runs here now.
    case running = 37
    /// Destination → source (post-copy): every page has arrived; the source may go.
    case allPagesPresent = 38
    /// Source → destination (post-copy, after the guest stopped): u16 port and u64 fingerprint
    /// of the page server serving the paused guest's memory.
    case pageServer = 39
    /// Source → destination, first on each extra page connection of a pre-copy with several
    /// (after the handshake): the plan's 16-byte channel token and the u8 channel index.
    case migrationChannel = 40
}
