import GuestMemory
import LinuxSystem

/// The receive queue: what is owed to the guest (control packets, host input as its credit
/// allows) goes into the buffers it posts, connections taking turns.
extension VirtioVsock {
    var hasReceiveWork: Bool { !controlBacklog.isEmpty || !scheduled.isEmpty }

    func wakeReceive() {
        guard !receiveWakePending else { return }
        receiveWakePending = true
        context?.wake(queue: Self.receiveQueue)
    }

    /// Fills receive buffers with what is owed to the guest, until either runs out. Out of
    /// buffers with work left, it arms the queue so the guest's next buffer brings it back.
    func serveReceive(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        receiveWakePending = false
        var used = false
        while hasReceiveWork {
            if !receiveChainHeld {
                guard try queue.pop(into: &receiveChain, memory: memory) else {
                    if try queue.armNotification() { continue }
                    return used
                }
                receiveChainHeld = true
            }
            // Room for a header and at least one payload byte, so every packet fits.
            guard receiveChain.writableBytes > VsockHeader.size else {
                counters.refused.add(1, ordering: .relaxed)
                queue.putUsed(head: receiveChain.head, length: 0)
                receiveChainHeld = false
                used = true
                continue
            }
            let length = nextPacket(capacity: min(receiveChain.writableBytes, scratch.count))
            guard length > 0 else { continue }
            // The buffers were checked to be guest RAM when the chain was taken.
            try? receiveChain.copyToWritable(scratch, from: 0, count: length, at: 0, memory: memory)
            queue.putUsed(head: receiveChain.head, length: UInt32(length))
            receiveChainHeld = false
            used = true
            counters.rxPackets.add(1, ordering: .relaxed)
        }
        return used
    }

    /// Writes the next packet owed to the guest into `scratch`; its length, 0 when nothing was
    /// owed after all.
    private func nextPacket(capacity: Int) -> Int {
        if let control = controlBacklog.takeFirst() {
            control.store(into: &scratch, at: 0)
            return VsockHeader.size
        }
        while let key = scheduled.takeFirst() {
            guard let connection = connections[key] else { continue }
            connection.scheduled = false
            let length = packet(for: connection, capacity: capacity)
            if connections[key] != nil, connection.hasWork { schedule(connection) }  // to the back: connections take turns
            if length > 0 { return length }
        }
        return 0
    }

    /// The connection's next packet in `scratch`: control packets first, then host input as the
    /// guest's credit allows, then the end of the host's input. 0 if nothing was owed.
    private func packet(for connection: VsockConnection, capacity: Int) -> Int {
        if connection.owesRequest {
            connection.owesRequest = false
            return storeHeader(for: connection, operation: VsockOperation.request)
        }
        if connection.owesResponse {
            connection.owesResponse = false
            return storeHeader(for: connection, operation: VsockOperation.response)
        }
        if connection.canSendData {
            let count = min(capacity - VsockHeader.size, connection.peerCredit, Self.payloadLimit)
            switch connection.stream.receive(into: &scratch, at: VsockHeader.size, count: count) {
            case .moved(let moved):
                connection.sentBytes &+= UInt32(moved)
                counters.rxBytes.add(moved, ordering: .relaxed)
                return storeHeader(for: connection, operation: VsockOperation.readWrite, length: UInt32(moved))
            case .wouldBlock:
                connection.hostReadable = false
            case .closed:
                connection.hostReadable = false
                connection.hostEnded = true
                connection.owesShutdown = true
            case .failed:
                tearDown(connection, resetGuest: true)
                return 0
            }
            updateInterest(connection)
        }
        if connection.owesShutdown {
            connection.owesShutdown = false
            return storeHeader(for: connection, operation: VsockOperation.shutdown, flags: VsockShutdown.send)
        }
        if connection.owesCreditUpdate {
            return storeHeader(for: connection, operation: VsockOperation.creditUpdate)
        }
        return 0
    }

    /// A packet header from Engram's side of `connection`, with the credit it gives; its size.
    private func storeHeader(for connection: VsockConnection, operation: UInt16, length: UInt32 = 0, flags: UInt32 = 0) -> Int {
        var header = VsockHeader()
        header.sourceCID = Self.hostCID
        header.destinationCID = guestCID
        header.sourcePort = connection.key.localPort
        header.destinationPort = connection.key.peerPort
        header.length = length
        header.operation = operation
        header.flags = flags
        header.bufferAllocation = UInt32(Self.bufferAllocation)
        header.forwardCount = connection.forwarded
        header.store(into: &scratch, at: 0)
        connection.advertisedForwardCount = connection.forwarded
        connection.owesCreditUpdate = false  // every packet carries fwd_cnt
        return VsockHeader.size + Int(length)
    }

    /// Puts `connection` at the back of the list of those with something for the guest.
    func schedule(_ connection: VsockConnection) {
        guard !connection.scheduled else { return }
        connection.scheduled = true
        scheduled.append(connection.key)
        wakeReceive()
    }

    /// Owes the guest a RST for `header`'s connection (unless it was one), answering a packet
    /// that belongs to no connection or breaks the rules.
    func refuse(_ header: VsockHeader) {
        guard header.operation != VsockOperation.reset else { return }
        var reset = VsockHeader()
        reset.sourceCID = Self.hostCID
        reset.destinationCID = guestCID
        reset.sourcePort = header.destinationPort
        reset.destinationPort = header.sourcePort
        reset.operation = VsockOperation.reset
        queueControl(reset)
    }

    func queueControl(_ header: VsockHeader) {
        guard controlBacklog.count < Self.controlBacklogLimit else {
            counters.controlDropped.add(1, ordering: .relaxed)
            return
        }
        if header.operation == VsockOperation.reset { counters.resetsSent.add(1, ordering: .relaxed) }
        controlBacklog.append(header)
        wakeReceive()
    }
}
