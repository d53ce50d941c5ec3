import LinuxSystem
import GuestMemory
import Paging
import SnapshotFormat

/// One client connection on the server: the handshake, then requests until the client leaves.
/// A request that breaks the protocol gets an ERROR frame and the connection is closed; it
/// never affects another connection or the server.
@safe
struct ServerSession {
    let server: PageServer
    let connection: FramedConnection

    var peer: String { connection.peer }

    /// The handshake, within its deadline; true once the client proved the secret and `admit`
    /// let it in (a full server sends "busy" instead).
    func authenticate(admit: () -> String?) -> Bool {
        connection.socket.setReceiveTimeout(milliseconds: WireProtocol.handshakeTimeoutMilliseconds)
        do { try Handshake.serve(connection, security: server.security, fingerprint: server.memory.fingerprint, admit: admit) } catch {
            if !server.isStopped { server.log("refused \(peer): \(error)") }
            return false
        }
        connection.socket.setReceiveTimeout(milliseconds: 0)
        return true
    }

    /// Serves requests until the client leaves or breaks the protocol.
    func serve() {
        let buffers = ServerBuffers()
        do {
            while true {
                let before = connection.bytesSent
                try serveRequest(buffers)
                server.countSent(connection.bytesSent - before)
            }
        } catch .closed {
            // The client left.
        } catch {
            // After `stop` shut the connection down, a failed send or recv is expected, not news.
            guard !server.isStopped else { return }
            connection.sendError(error.description)
            server.log("closed \(peer): \(error)")
        }
    }

    private func serveRequest(_ buffers: ServerBuffers) throws(TransportError) {
        let header = try connection.readFrameHeader(maximumLength: WireProtocol.maximumRequestLength)
        switch header.type {
        case .background:
            guard header.length == 0 else { throw malformed("a BACKGROUND frame carries no payload") }
            // Bulk transfers yield the CPU to connections serving faults.
            NamedThread.lowerCurrentPriority()
        case .manifestRequest:
            guard header.length == 0 else { throw malformed("a MANIFEST request carries no payload") }
            try connection.sendFrame(.manifest, server.manifest().encoded())
        case .read:
            guard header.length == 16 else { throw malformed("a READ request is 16 bytes, not \(header.length)") }
            var reader = ByteReader(try connection.readPayload(16), peer: peer)
            let region = Int(try reader.u32("region"))
            let first = PageIndex(try reader.u64("first page"))
            let count = Int(try reader.u32("count"))
            try checkRange(region: region, first: first, count: count)
            try sendRun(region: region, first: first, count: count, buffers)
        case .list:
            guard header.length >= 4, (header.length - 4) % 8 == 0 else { throw malformed("a LIST request of \(header.length) bytes") }
            let payload = try connection.readPayload(header.length)
            var reader = ByteReader(payload, peer: peer)
            let count = Int(try reader.u32("count"))
            guard (1...WireProtocol.maximumListPages).contains(count), header.length == 4 + count * 8 else {
                throw malformed("a LIST of \(count) pages in \(header.length) bytes; expected 1 to \(WireProtocol.maximumListPages) pages, 8 bytes each")
            }
            var references: [PageReference] = []
            references.reserveCapacity(count)
            for _ in 0..<count {
                let reference = PageReference(packed: try reader.u64("page reference"))
                try checkRange(region: reference.region, first: reference.page, count: 1)
                references.append(reference)
            }
            try sendList(references, buffers)
        case .getWorkingSet:
            guard header.length == 0 else { throw malformed("a GET_WORKING_SET request carries no payload") }
            let set: WorkingSet?
            do { set = try server.memory.loadWorkingSet() } catch { throw refused("the stored working set is unusable: \(error)") }
            try connection.sendFrame(.workingSet, set?.encoded() ?? [])
        case .putWorkingSet:
            let set: WorkingSet
            do { set = try WorkingSet(decoding: try connection.readPayload(header.length), origin: "the working set sent") } catch let error as PageSourceError {
                throw malformed(error.description)
            } catch let error as TransportError {
                throw error
            } catch { throw malformed("\(error)") }
            do {
                try server.workingSetLock.withLock { _ throws(PageSourceError) in try server.memory.storeWorkingSet(set) }
            } catch { throw refused(error.description) }
            server.log("\(peer) stored a working set of \(set.pages.count) pages")
            try connection.sendFrame(.ok, [])
        default:
            throw malformed("\(header.type) is not a request")
        }
    }

    private func checkRange(region: Int, first: PageIndex, count: Int) throws(TransportError) {
        guard region < server.memory.regionCount else {
            throw malformed("region \(region) does not exist; the server has \(server.memory.regionCount)")
        }
        let pages = server.memory.pageCount(region: region)
        guard (1...WireProtocol.maximumReadPages).contains(count), first.rawValue < pages, UInt64(count) <= pages - first.rawValue else {
            throw malformed("pages \(first) to \(first.rawValue &+ UInt64(count)) of region \(region): expected 1 to \(WireProtocol.maximumReadPages) pages inside its \(pages)")
        }
    }

    /// Sends `count` pages of `region` from `first` in one PAGES frame.
    private func sendRun(region: Int, first: PageIndex, count: Int, _ buffers: ServerBuffers) throws(TransportError) {
        try buffers.pages.withMutablePages(count) { (data) throws(TransportError) in try read(region: region, first: first, into: &data) }
        buffers.pages.withPages(count) { data in
            for index in 0..<count {
                let page = first + UInt64(index)
                buffers.references[index] = PageReference(region: region, page: page).packed
                buffers.crcs[index] = server.memory.pageCRC(region: region, page: page, bytes: data.extracting(index * PageSize.bytes..<(index + 1) * PageSize.bytes))
            }
        }
        try send(count: count, buffers)
    }

    /// Streams the data pages of `references` in order, in frames of up to 256 pages.
    private func sendList(_ references: [PageReference], _ buffers: ServerBuffers) throws(TransportError) {
        var next = 0
        while next < references.count {
            let end = min(next + WireProtocol.listFramePages, references.count)
            var index = next
            while index < end {
                // Neighbouring pages in the list are read in one call.
                var last = index + 1
                while last < end, references[last].region == references[index].region, references[last].page == references[last - 1].page + 1 {
                    last += 1
                }
                let offset = (index - next) * PageSize.bytes
                try buffers.pages.withMutablePages(end - next) { (data) throws(TransportError) in
                    try data.withBytes(in: offset..<offset + (last - index) * PageSize.bytes) { (run) throws(TransportError) in
                        try read(region: references[index].region, first: references[index].page, into: &run)
                    }
                }
                index = last
            }
            buffers.pages.withPages(end - next) { data in
                for index in next..<end {
                    buffers.references[index - next] = references[index].packed
                    buffers.crcs[index - next] = server.memory.pageCRC(
                        region: references[index].region, page: references[index].page, bytes: data.extracting((index - next) * PageSize.bytes..<(index - next + 1) * PageSize.bytes))
                }
            }
            try send(count: end - next, buffers)
            next = end
        }
    }

    private func read(region: Int, first: PageIndex, into data: inout MutableRawSpan) throws(TransportError) {
        do { try server.memory.readPages(region: region, firstPage: first, into: &data) } catch {
            server.log("cannot serve region \(region) page \(first) to \(peer): \(error)")
            throw refused("the served memory cannot be read here: \(error)")
        }
    }

    /// Sends the first `count` pages of the session's buffer with their references and CRCs.
    private func send(count: Int, _ buffers: ServerBuffers) throws(TransportError) {
        // Local copies of the arrays share their storage (no copy); a span needs a value it can borrow.
        let references = buffers.references, crcs = buffers.crcs
        try buffers.pages.withPages(count) { (data) throws(TransportError) in
            try connection.sendPages(references: references.span.extracting(0..<count), crcs: crcs.span.extracting(0..<count), data: data)
        }
    }

    private func malformed(_ reason: String) -> TransportError { .malformed(peer: peer, reason: reason) }
    private func refused(_ message: String) -> TransportError { .refused(peer: peer, message: message) }
}
