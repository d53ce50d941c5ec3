import LinuxSystem
import SystemPackage

/// An RFB (VNC) server showing a display file to any number of viewers at once (RFC 6143).
///
/// Blocking sockets and POSIX threads, no event loop: an acceptor, one change poller, and one
/// thread per viewer. Viewers can only look and type: key events go to `keyEvent`, pointer
/// events and clipboard text are read and dropped.
///
///     let server = try VNCServer(view: view, host: "127.0.0.1", port: 5900, keyEvent: { keysym, down in … })
///     try server.run()  // until another thread calls server.stop()
package final class VNCServer: Sendable {
    /// What every viewer's thread reads: fixed once the server is made.
    final class Shared: Sendable {
        let view: FramebufferView
        let grid: TileGrid
        let password: [UInt8]?
        let name: String
        let keyEvent: @Sendable (UInt32, Bool) -> Void
        let log: @Sendable (String) -> Void
        let ioTimeoutMilliseconds: Int
        let totals = Locked(VNCStatistics())

        init(view: FramebufferView, password: [UInt8]?, name: String, keyEvent: @escaping @Sendable (UInt32, Bool) -> Void,
             log: @escaping @Sendable (String) -> Void, ioTimeoutMilliseconds: Int) {
            self.view = view
            grid = TileGrid(width: view.width, height: view.height)
            self.password = password
            self.name = name
            self.keyEvent = keyEvent
            self.log = log
            self.ioTimeoutMilliseconds = ioTimeoutMilliseconds
        }

        /// Adds to the server's totals (once per update or write, not per pixel).
        func record(_ delta: VNCStatistics) { totals.withLock { $0.add(delta) } }
    }

    /// At most this many viewers at once; later ones are turned away.
    package static let maximumViewers = 32
    /// Connections still in the RFB handshake: at most this many at once (a newer one ends the
    /// oldest), each within `handshakeMilliseconds`, and none counts as a viewer until its
    /// handshake (with the password, if there is one) is done. So idle connections cannot turn
    /// viewers away.
    package static let maximumPendingHandshakes = 16
    package static let handshakeMilliseconds = 5000
    private let pending = PendingHandshakes(maximum: VNCServer.maximumPendingHandshakes)

    private let shared: Shared
    private let listener: ListeningSocket
    private let tracker: ChangeTracker
    private let lifecycle = Lifecycle()

    /// Listens on `host`:`port` (0: any free port; see `boundPort`) for viewers of `view`.
    ///
    /// - Parameters:
    ///   - password: VNC Authentication with this password (only its first 8 bytes count);
    ///     nil or empty for no authentication.
    ///   - name: the desktop name viewers show; "engram FILE" by default.
    ///   - keyEvent: called on a viewer's thread for each key press (`down`) and release, with
    ///     the X11 keysym.
    ///   - log: one-line messages: viewers coming and going, and why they were dropped.
    ///   - pollIntervalMilliseconds: how often the pixels are compared while a viewer waits and
    ///     the screen changes (or a key was just pressed).
    ///   - idlePollIntervalMilliseconds: how often they are compared once the screen has been
    ///     still for a second or more (a full compare reads the screen twice).
    ///   - ioTimeoutMilliseconds: how long a viewer may stall a read or write before it is dropped.
    package init(
        view: FramebufferView, host: String, port: UInt16, password: [UInt8]? = nil, name: String? = nil,
        keyEvent: @escaping @Sendable (_ keysym: UInt32, _ down: Bool) -> Void = { _, _ in },
        log: @escaping @Sendable (String) -> Void = VNCServer.logToStandardError,
        pollIntervalMilliseconds: Int = 20, idlePollIntervalMilliseconds: Int = 200, ioTimeoutMilliseconds: Int = 20_000
    ) throws(DisplayError) {
        shared = Shared(
            view: view, password: password?.isEmpty == false ? password : nil, name: name ?? "engram \(view.fileName)",
            keyEvent: keyEvent, log: log, ioTimeoutMilliseconds: ioTimeoutMilliseconds)
        do { listener = try ListeningSocket(endpoint: Endpoint(host: host, port: port), backlog: 16) } catch { throw DisplayError(error) }
        tracker = ChangeTracker(fastIntervalMilliseconds: pollIntervalMilliseconds, idleIntervalMilliseconds: idlePollIntervalMilliseconds)
    }

    /// The port listened on (the kernel's choice when the server was made with port 0).
    package var boundPort: UInt16 { listener.boundPort }

    /// HOST:PORT listened on, as given.
    package var address: String { listener.endpoint.description }

    /// What has been sent so far, summed over all viewers.
    package var statistics: VNCStatistics { shared.totals.withLock { $0 } }

    /// Serves viewers on the calling thread until `stop` is called; returns once every viewer
    /// thread and the poller have ended.
    package func run() throws(DisplayError) {
        guard lifecycle.beginServing() else { return }
        defer { lifecycle.finish() }
        let poller: NamedThread
        do throws(SystemError) {
            poller = try NamedThread.spawn(name: "vnc-poller", role: .display) { [tracker, shared] in
                tracker.runPoller(FramebufferShadow(view: shared.view))
            }
        } catch { throw .thread(error) }
        while let socket = try? listener.accept() {
            admit(socket)
        }
        tracker.stop()
        lifecycle.waitForViewerThreads()
        poller.join()
    }

    /// Serves viewers on a thread of its own until `stop` is called.
    package func start() throws(DisplayError) {
        try lifecycle.startAcceptor { () throws(DisplayError) in
            do throws(SystemError) {
                return try NamedThread.spawn(name: "vnc-accept", role: .display) { [self] in
                    do throws(DisplayError) { try run() } catch { shared.log("vnc: \(address): \(error)") }
                }
            } catch { throw .thread(error) }
        }
    }

    /// Stops listening, cuts every viewer off and waits until all threads have ended.
    /// Safe to call more than once and from any thread except a viewer's (the key callback).
    package func stop() {
        lifecycle.requestStop()
        listener.shutdown()
        pending.endAll()
        tracker.stop()
        lifecycle.joinAcceptorAndWait()
    }

    /// The default log: one line on standard error, in one write so threads' lines never mix.
    package static let logToStandardError: @Sendable (String) -> Void = { line in
        _ = try? FileDescriptor.standardError.writeAll(Array((line + "\n").utf8))
    }

    /// Starts a thread for a new viewer, unless the server is full or stopping.
    private func admit(_ socket: StreamSocket) {
        let peer = socket.peer
        let session: ClientSession
        do throws(DisplayError) {
            session = try ClientSession(socket: socket, grid: shared.grid)
        } catch {
            shared.log("vnc: \(peer) turned away: \(error)")
            return
        }
        guard lifecycle.addViewerThread() else { return }
        let ticket = pending.add(socket)
        do {
            try NamedThread.spawnDetached(name: "vnc-client", role: .display) { [shared, tracker, lifecycle, pending] in
                var registered = false
                ClientConnection(session: session, server: shared, tracker: tracker).run(handshakeMilliseconds: Self.handshakeMilliseconds) {
                    guard pending.finish(ticket) else { return false }
                    guard tracker.register(session, limit: Self.maximumViewers) else {
                        shared.log("vnc: \(peer) turned away: \(Self.maximumViewers) viewers are connected already")
                        return false
                    }
                    registered = true
                    return true
                }
                if registered { tracker.unregister(session) } else { _ = pending.finish(ticket) }
                lifecycle.removeViewerThread()
            }
        } catch {
            _ = pending.finish(ticket)
            shared.log("vnc: \(peer) turned away: \(error)")
            lifecycle.removeViewerThread()
        }
    }
}
