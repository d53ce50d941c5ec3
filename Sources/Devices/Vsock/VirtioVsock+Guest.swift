import GuestMemory
import LinuxSystem

/// The transmit queue: packets from the guest. Every header is checked before anything is done
/// for it; a packet that breaks the rules is answered with RST and never reaches a host socket.
extension VirtioVsock {
    func serveTransmit(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        var used = false
        while try queue.pop(into: &chain, memory: memory) {
            handlePacket(memory: memory)
            queue.putUsed(head: chain.head, length: 0)
            used = true
        }
        return used
    }

    /// Handles the packet in `chain`.
    private func handlePacket(memory: GuestMemoryMap) {
        counters.txPackets.add(1, ordering: .relaxed)
        guard chain.readableBytes >= VsockHeader.size,
              (try? chain.copyReadable(from: 0, count: VsockHeader.size, into: &scratch, at: 0, memory: memory)) != nil
        else {
            counters.refused.add(1, ordering: .relaxed)
            return  // no header to answer
        }
        let header = VsockHeader(loading: scratch, at: 0)
        guard running, header.sourceCID == guestCID, header.destinationCID == Self.hostCID, header.type == VsockHeader.streamType,
              Int(header.length) <= Self.payloadLimit, Int(header.length) <= chain.readableBytes - VsockHeader.size
        else {
            counters.refused.add(1, ordering: .relaxed)
            refuse(header)
            return
        }
        let key = VsockKey(localPort: header.destinationPort, peerPort: header.sourcePort)
        if header.operation == VsockOperation.request {
            if let existing = connections[key] { tearDown(existing, resetGuest: false) }
            connectToHost(header)
            return
        }
        guard let connection = connections[key] else {
            if header.operation != VsockOperation.reset { counters.refused.add(1, ordering: .relaxed) }
            refuse(header)
            return
        }
        connection.peerBufferAllocation = header.bufferAllocation
        connection.peerForwardCount = header.forwardCount
        switch header.operation {
        case VsockOperation.response:
            accept(connection)
        case VsockOperation.reset:
            tearDown(connection, resetGuest: false)
            return
        case VsockOperation.shutdown:
            shutDown(connection, flags: header.flags)
        case VsockOperation.readWrite:
            guard receive(header.length, on: connection, memory: memory) else { return }
        case VsockOperation.creditUpdate:
            break
        case VsockOperation.creditRequest:
            connection.owesCreditUpdate = true
        default:
            counters.refused.add(1, ordering: .relaxed)
            tearDown(connection, resetGuest: true)
            return
        }
        guard connections[key] != nil else { return }
        if connection.hasWork { schedule(connection) }  // credit may have come back
        updateInterest(connection)
    }

    /// A guest REQUEST to host port P: connects to the Unix socket `PATH_P`; RST if nobody listens there.
    private func connectToHost(_ header: VsockHeader) {
        guard connections.count < Self.connectionLimit,
              let stream = try? NonBlockingStream.connect(unixPath: "\(path)_\(header.destinationPort)")
        else {
            refuse(header)
            return
        }
        let connection = VsockConnection(
            key: VsockKey(localPort: header.destinationPort, peerPort: header.sourcePort), stream: stream,
            token: allocateToken(), hostInitiated: false, bufferAllocation: Self.bufferAllocation)
        connection.peerBufferAllocation = header.bufferAllocation
        connection.peerForwardCount = header.forwardCount
        connection.owesResponse = true
        insert(connection)
        schedule(connection)
        updateInterest(connection)
    }

    /// The guest accepted a connection a host client asked for: tell the client, Firecracker's way.
    private func accept(_ connection: VsockConnection) {
        guard connection.hostInitiated, !connection.established else {
            tearDown(connection, resetGuest: true)
            return
        }
        connection.established = true
        let reply = Array("OK \(connection.key.localPort)\n".utf8)
        // A new socket's buffer always has room for one short line; anything less is a dead client.
        guard connection.stream.send(reply, from: 0, count: reply.count) == .moved(reply.count) else {
            tearDown(connection, resetGuest: true)
            return
        }
    }

    /// SHUTDOWN: the guest will receive no more (stop reading the host), send no more (the host
    /// sees end of input once what waits is written); both ends the connection with RST once
    /// the waiting bytes are written.
    private func shutDown(_ connection: VsockConnection, flags: UInt32) {
        if flags & VsockShutdown.receive != 0, !connection.guestStoppedReceiving {
            connection.guestStoppedReceiving = true
            connection.hostReadable = false
            connection.stream.shutdown(reading: true, writing: false)
        }
        if flags & VsockShutdown.send != 0 { connection.guestStoppedSending = true }
        finishIfDone(connection)
    }

    /// RW: `length` payload bytes for the host socket, within the credit Engram gave (RST past it).
    private func receive(_ length: UInt32, on connection: VsockConnection, memory: GuestMemoryMap) -> Bool {
        let count = Int(length)
        guard connection.established, !connection.guestStoppedSending else {
            tearDown(connection, resetGuest: true)
            return false
        }
        guard count <= connection.outbound.freeBytes else {
            counters.creditViolations.add(1, ordering: .relaxed)
            tearDown(connection, resetGuest: true)
            return false
        }
        guard count > 0 else { return true }
        let (first, second) = connection.outbound.freePieces(count)
        let copied = connection.outbound.withStorage { storage in
            (try? chain.copyReadable(from: VsockHeader.size, count: first.1, into: &storage, at: first.0, memory: memory)) != nil
                && (second.1 == 0 || (try? chain.copyReadable(from: VsockHeader.size + first.1, count: second.1, into: &storage, at: second.0, memory: memory)) != nil)
        }
        guard copied else {
            tearDown(connection, resetGuest: true)
            return false
        }
        connection.outbound.commit(count)
        connection.receivedBytes &+= length
        counters.txBytes.add(count, ordering: .relaxed)
        return flush(connection)
    }

    /// Writes what waits for the host socket, as far as it takes it; false if the connection ended.
    @discardableResult
    func flush(_ connection: VsockConnection) -> Bool {
        while !connection.outbound.isEmpty {
            let (offset, length) = connection.outbound.firstPiece
            switch connection.stream.send(connection.outbound.storage, from: offset, count: length) {
            case .moved(let moved):
                connection.outbound.consume(moved)
                connection.forwarded &+= UInt32(moved)
            case .wouldBlock:
                return true
            case .closed, .failed:
                tearDown(connection, resetGuest: true)
                return false
            }
        }
        // Tell the guest about freed credit before it runs short, not after every write.
        if connection.forwarded &- connection.advertisedForwardCount >= UInt32(Self.bufferAllocation / 4) {
            connection.owesCreditUpdate = true
        }
        return finishIfDone(connection)
    }

    /// Passes on the guest's half-close once its bytes are written, and ends a connection the
    /// guest shut both ways with RST; false if it ended.
    @discardableResult
    func finishIfDone(_ connection: VsockConnection) -> Bool {
        guard connection.outbound.isEmpty else { return true }
        if connection.guestStoppedSending, connection.guestStoppedReceiving {
            tearDown(connection, resetGuest: true)
            return false
        }
        if connection.guestStoppedSending, !connection.hostWritingShut {
            connection.hostWritingShut = true
            connection.stream.shutdown(reading: false, writing: true)
        }
        return true
    }
}
