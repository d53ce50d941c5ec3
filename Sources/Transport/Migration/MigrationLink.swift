import GuestMemory
import LinuxSystem
import Paging

/// One migration connection, from either end: authenticated like the page protocol (with its
/// own proof labels), then control frames and PAGES frames in order. The source writes pages
/// straight from guest memory; the destination reads them straight into its regions.
package final class MigrationLink: Sendable {
    package let connection: FramedConnection

    /// Seconds a migration may make no progress before its peer counts as gone: the source
    /// then resumes its guest, the destination gives up.
    package static let stallMilliseconds = 20_000

    package init(connection: FramedConnection) {
        self.connection = connection
        connection.socket.setSendTimeout(milliseconds: Self.stallMilliseconds)
    }

    package var peer: String { connection.peer }
    package var bytesSent: UInt64 { connection.bytesSent }
    package var bytesReceived: UInt64 { connection.bytesReceived }

    /// The source's side: connect to a waiting destination and prove the secret both ways.
    package static func connect(to endpoint: Endpoint, security: TransportSecurity, timeoutMilliseconds: Int32 = 5000) throws(TransportError) -> MigrationLink {
        let socket: StreamSocket
        do { socket = try StreamSocket.connect(to: endpoint, timeoutMilliseconds: timeoutMilliseconds) } catch { throw TransportError(error) }
        // The handshake (TLS and proofs) has the connect time limit, as the destination has its own.
        socket.setReceiveTimeout(milliseconds: WireProtocol.handshakeTimeoutMilliseconds)
        let connection = try security.connection(socket, server: false, host: endpoint.host)
        _ = try Handshake.join(connection, security: security, identity: MigrationProtocol.identity)
        socket.setReceiveTimeout(milliseconds: 0)
        return MigrationLink(connection: connection)
    }

    /// The source's side of a page channel (pre-copy over several connections): connect, prove
    /// the secret, then name the migration's token and the channel's index.
    package static func connectChannel(to endpoint: Endpoint, security: TransportSecurity, token: [UInt8], index: Int) throws(TransportError) -> MigrationLink {
        let link = try connect(to: endpoint, security: security)
        var writer = ByteWriter()
        writer.append(token)
        writer.append([UInt8(truncatingIfNeeded: index)])
        do { try link.connection.sendFrame(.migrationChannel, writer.bytes) } catch {
            link.close()
            throw error
        }
        return link
    }

    /// Handshakes that may wait at once before the oldest is ended for a new one.
    package static let maximumPendingHandshakes = 16

    /// The destination's side: accepts connections until one proves the secret. Each handshake
    /// runs on a thread of its own with its own deadline (`handshakeMilliseconds`), so peers that
    /// connect and say nothing cannot hold up the real source; at most
    /// `maximumPendingHandshakes` wait at once, and a new connection beyond that ends the oldest.
    /// A peer that fails is told why, logged and dropped; once one proves the secret the others
    /// are ended.
    package static func accept(
        on listener: ListeningSocket, security: TransportSecurity, log: @escaping @Sendable (String) -> Void,
        handshakeMilliseconds: Int = WireProtocol.handshakeTimeoutMilliseconds
    ) throws(TransportError) -> MigrationLink {
        let links = try accept(count: 1, on: listener, security: security, log: log, handshakeMilliseconds: handshakeMilliseconds,
                               waitMilliseconds: nil) { _ throws(TransportError) in 0 }
        return links[0]
    }

    /// The destination's side of a pre-copy's page channels, once the plan has named `count`
    /// and their `token`: accepts connections as `accept` does until each channel has joined,
    /// by index. A connection that proves the secret but names another token or index is logged
    /// and dropped; channels missing after `waitMilliseconds` fail the migration.
    package static func acceptChannels(
        count: Int, token: [UInt8], on listener: ListeningSocket, security: TransportSecurity, log: @escaping @Sendable (String) -> Void,
        waitMilliseconds: Int = stallMilliseconds, handshakeMilliseconds: Int = WireProtocol.handshakeTimeoutMilliseconds
    ) throws(TransportError) -> [MigrationLink] {
        try accept(count: count, on: listener, security: security, log: log, handshakeMilliseconds: handshakeMilliseconds,
                   waitMilliseconds: waitMilliseconds) { (link) throws(TransportError) -> Int in
            var reader = ByteReader(try link.connection.readFrame(.migrationChannel, maximumLength: 64), peer: link.peer)
            let named = try reader.bytes(token.count, "channel token")
            let index = Int(try reader.u8("channel index"))
            try reader.expectEnd("the channel frame")
            // Not a secret (the peer has proven the shared one); it only keeps channels of another migration out.
            guard named == token else { throw .malformed(peer: link.peer, reason: "its page channel names another migration's token") }
            guard index < count else { throw .malformed(peer: link.peer, reason: "page channel \(index); the plan has \(count)") }
            return index
        }
    }

    /// Accepts until `count` authenticated links have each been given their slot by `admit`
    /// (which reads what else a link must say, under the handshake's deadline), or until
    /// `waitMilliseconds` pass. A second link for a taken slot is closed.
    private static func accept(
        count: Int, on listener: ListeningSocket, security: TransportSecurity, log: @escaping @Sendable (String) -> Void,
        handshakeMilliseconds: Int, waitMilliseconds: Int?, admit: @escaping @Sendable (MigrationLink) throws(TransportError) -> Int
    ) throws(TransportError) -> [MigrationLink] {
        let pending = PendingHandshakes(maximum: maximumPendingHandshakes)
        let slots = Locked<[MigrationLink?]>(Array(repeating: nil, count: count))
        let deadline = waitMilliseconds.map { ContinuousClock.now + .milliseconds($0) }
        defer { pending.endAll() }
        while true {
            let links = slots.withLock { $0 }.compactMap { $0 }
            if links.count == count { return links }
            if let deadline, ContinuousClock.now >= deadline {
                for link in links { link.close() }
                throw .socket(peer: "the source's page channels", call: "waiting \(waitMilliseconds ?? 0) ms for \(count - links.count) of \(count)", .timedOut)
            }
            guard listener.hasConnection(withinMilliseconds: 5) else { continue }
            let socket: StreamSocket
            do { socket = try listener.accept() } catch { throw TransportError(error) }
            socket.setReceiveTimeout(milliseconds: handshakeMilliseconds)
            let ticket = pending.add(socket)
            let handshake: @Sendable () -> Void = {
                do {
                    let connection = try security.connection(socket, server: true)
                    try Handshake.serve(connection, security: security, fingerprint: 0, identity: MigrationProtocol.identity)
                    let link = MigrationLink(connection: connection)
                    let slot = try admit(link)
                    socket.setReceiveTimeout(milliseconds: 0)
                    // The first to prove the secret takes its slot; a later one (or one after the wait) is closed.
                    let kept = pending.finish(ticket) && slots.withLock { held in
                        guard held[slot] == nil else { return false }
                        held[slot] = link
                        return true
                    }
                    if !kept { link.close() }
                } catch {
                    if pending.finish(ticket) { log("refused a migration connection from \(socket.peer): \(error)") }
                }
            }
            do { try NamedThread.spawnDetached(name: "migration-handshake", role: .migration, handshake) } catch {
                _ = pending.finish(ticket)
                socket.shutdown()
                log("refused a migration connection from \(socket.peer): no thread for its handshake (\(error))")
            }
        }
    }

    /// No frame may take longer than this to arrive (0: wait forever; the send timeout stays).
    package func setReceiveTimeout(milliseconds: Int) { connection.socket.setReceiveTimeout(milliseconds: milliseconds) }

    /// Ends the connection at once (the other side sees it closed).
    package func close() { connection.socket.shutdown() }

    // MARK: Control frames

    package func sendPlan(_ plan: MigrationPlan) throws(TransportError) { try connection.sendFrame(.migrationPlan, plan.encoded()) }

    package func receivePlan() throws(TransportError) -> MigrationPlan {
        try MigrationPlan.decode(try connection.readFrame(.migrationPlan, maximumLength: MigrationProtocol.maximumControlFrame), peer: peer)
    }

    package func sendReady() throws(TransportError) { try connection.sendFrame(.migrationReady, [1]) }
    package func receiveReady() throws(TransportError) { _ = try connection.readFrame(.migrationReady, maximumLength: 16) }

    package func sendRunning() throws(TransportError) { try connection.sendFrame(.running, [1]) }
    package func receiveRunning() throws(TransportError) { _ = try connection.readFrame(.running, maximumLength: 16) }

    package func sendAllPagesPresent() throws(TransportError) { try connection.sendFrame(.allPagesPresent, [1]) }
    package func receiveAllPagesPresent() throws(TransportError) { _ = try connection.readFrame(.allPagesPresent, maximumLength: 16) }

    package func sendPassEnd(pass: UInt32, pages: UInt64) throws(TransportError) {
        var writer = ByteWriter()
        writer.u32(pass)
        writer.u64(pages)
        try connection.sendFrame(.passEnd, writer.bytes)
    }

    package func sendState(_ state: [UInt8]) throws(TransportError) { try connection.sendFrame(.machineState, state) }

    /// Post-copy: where the paused guest's memory is served (a port on the source's address).
    package func sendPageServer(port: UInt16, fingerprint: UInt64) throws(TransportError) {
        var writer = ByteWriter()
        writer.u16(port)
        writer.u64(fingerprint)
        try connection.sendFrame(.pageServer, writer.bytes)
    }

    /// Names pages that are zero now (they held data before); at most `maximumZeroPages`.
    package func sendZeroPages(_ references: [UInt64]) throws(TransportError) {
        precondition(!references.isEmpty && references.count <= MigrationProtocol.maximumZeroPages, "zero-pages frame of \(references.count)")
        var writer = ByteWriter()
        writer.u32(UInt32(references.count))
        for reference in references { writer.u64(reference) }
        try connection.sendFrame(.zeroPages, writer.bytes)
    }

    /// Sends a PAGES frame from guest memory, without allocating.
    package func sendPages(references: Span<UInt64>, crcs: Span<UInt32>, data: RawSpan) throws(TransportError) {
        try connection.sendPages(references: references, crcs: crcs, data: data)
    }

    /// Sends the first `count` pages of `pages` in one PAGES frame, with the first `count`
    /// entries of `references` and `crcs`; allocates nothing.
    package func sendPages(references: [UInt64], crcs: [UInt32], count: Int, from pages: PageBuffer) throws(TransportError) {
        precondition(count <= references.count && count <= crcs.count, "\(count) pages with \(references.count) references and \(crcs.count) CRCs")
        try pages.withPages(count) { (data) throws(TransportError) in
            try connection.sendPages(references: references.span.extracting(0..<count), crcs: crcs.span.extracting(0..<count), data: data)
        }
    }
}
