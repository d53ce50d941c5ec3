import GuestMemory
import LinuxSystem

/// A virtio-vsock device (type 19) with Firecracker's host side: host programs connect to the
/// Unix socket `path` and write `CONNECT <port>\n` to reach a guest port (answered
/// `OK <hostport>\n`); a guest connection to host port P is bridged to the Unix socket at
/// `path_P`. Stream sockets only, with credit-based flow control both ways.
///
/// Everything runs on the device I/O thread: guest packets when the tx queue is notified, host
/// sockets (non-blocking, in the thread's epoll) when they are ready. Packets for the guest wait
/// as per-connection state (control packets owed, host input not yet read) until the guest posts
/// receive buffers; nothing blocks, and the data path allocates nothing.
package final class VirtioVsock: VirtioBackend {
    static let queueSize: UInt16 = 256
    static let receiveQueue = 0, transmitQueue = 1, eventQueue = 2
    /// The host's CID (VMADDR_CID_HOST).
    package static let hostCID: UInt64 = 2
    /// The largest payload accepted in one guest packet, and put in one receive buffer.
    package static let payloadLimit = 64 << 10
    /// The credit Engram gives the guest on each connection (its buf_alloc).
    package static let bufferAllocation = 256 << 10
    package static let connectionLimit = 1024
    /// Resets owed to the guest for packets of no connection; more are dropped.
    static let controlBacklogLimit = 256
    /// Engram's first port for connections host clients start (Firecracker's choice too).
    static let firstLocalPort: UInt32 = 1 << 30
    static let listenerToken: UInt32 = 0

    package let guestCID: UInt64
    package let path: String
    package let counters: VsockCounters
    let listener: UnixStreamListener
    var context: VirtioIOContext?
    /// DRIVER_OK was set: the listener is watched and packets flow.
    var running = false

    var connections: [VsockKey: VsockConnection] = [:]
    var connectionsByToken: [UInt32: VsockKey] = [:]
    var handshakes: [UInt32: VsockHandshake] = [:]
    var nextToken: UInt32 = 1
    var nextLocalPort = VirtioVsock.firstLocalPort

    /// Connections with something for the guest, first come first served (a FIFO in an array).
    var scheduled: [VsockKey] = []
    var scheduledHead = 0
    /// Resets for packets that belong to no connection.
    var controlBacklog: [VsockHeader] = []
    var controlHead = 0
    var receiveWakePending = false
    var transportResetPending = false

    var chain: DescriptorChain
    /// A receive buffer taken from the ring that the last packet did not need after all.
    var receiveChainHeld = false
    var receiveChain: DescriptorChain
    var scratch = [UInt8](repeating: 0, count: VsockHeader.size + VirtioVsock.payloadLimit)

    /// Listens at `path` for host clients (see `UnixStreamListener` for what it replaces).
    package init(guestCID: UInt64, path: String, counters: VsockCounters = VsockCounters()) throws(SystemCallError) {
        self.guestCID = guestCID
        self.path = path
        self.counters = counters
        listener = try UnixStreamListener(path: path)
        chain = DescriptorChain(capacity: Int(Self.queueSize))
        receiveChain = DescriptorChain(capacity: Int(Self.queueSize))
        controlBacklog.reserveCapacity(Self.controlBacklogLimit)
    }

    package var deviceType: VirtioDeviceType { .vsock }
    package var deviceFeatures: UInt64 { 0 }  // stream sockets only, which needs no feature bit
    package var queueMaximumSizes: [UInt16] { [Self.queueSize, Self.queueSize, 8] }

    /// struct virtio_vsock_config: guest_cid, u64 little-endian.
    package func configurationByte(at offset: Int) -> UInt8? {
        offset >= 0 && offset < 8 ? UInt8(truncatingIfNeeded: guestCID >> (8 * UInt64(offset))) : nil
    }

    package func attach(_ context: VirtioIOContext) { self.context = context }

    package func activate(features: UInt64) {
        running = true
        try? context?.watch(listener.rawValue, interest: .readable, token: Self.listenerToken)
    }

    package func reset() {
        dropEverything()
        if running { context?.unwatch(listener.rawValue) }
        running = false
        receiveChainHeld = false
        transportResetPending = false
    }

    /// The receive and event queues keep their buffers until there is something to put in them.
    package func holdsBuffers(queue index: Int) -> Bool { index != Self.transmitQueue }

    package func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.receiveQueue: return try serveReceive(&queue, memory: memory)
        case Self.transmitQueue:
            let used = try serveTransmit(&queue, memory: memory)
            if hasReceiveWork { wakeReceive() }
            return used
        default: return try serveEvents(&queue, memory: memory)
        }
    }

    /// Sends the guest VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (after a restore or migration, as
    /// Firecracker does): every connection is dropped and its host stream closed; the listener
    /// stays.
    package func resetTransport() {
        dropEverything()
        transportResetPending = true
        context?.wake(queue: Self.eventQueue)
    }

    /// Open connections (for tests and the API).
    package var connectionCount: Int { connections.count }

    // MARK: The receive queue

    var hasReceiveWork: Bool { controlHead < controlBacklog.count || scheduledHead < scheduled.count }

    func wakeReceive() {
        guard !receiveWakePending else { return }
        receiveWakePending = true
        context?.wake(queue: Self.receiveQueue)
    }

    /// Fills receive buffers with what is owed to the guest, until either runs out. Out of
    /// buffers with work left, it arms the queue so the guest's next buffer brings it back.
    private func serveReceive(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
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
        if controlHead < controlBacklog.count {
            controlBacklog[controlHead].store(into: &scratch, at: 0)
            controlHead += 1
            if controlHead == controlBacklog.count { controlBacklog.removeAll(keepingCapacity: true); controlHead = 0 }
            return VsockHeader.size
        }
        while scheduledHead < scheduled.count {
            let key = scheduled[scheduledHead]
            scheduledHead += 1
            if scheduledHead == scheduled.count { scheduled.removeAll(keepingCapacity: true); scheduledHead = 0 }
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

    // MARK: The event queue

    private func serveEvents(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        while transportResetPending {
            guard try queue.pop(into: &chain, memory: memory) else {
                if try queue.armNotification() { continue }
                return false
            }
            var written: UInt32 = 0
            if chain.writableBytes >= 4 {
                for index in 0..<4 { scratch[index] = 0 }  // struct virtio_vsock_event { le32 id = TRANSPORT_RESET (0) }
                try? chain.copyToWritable(scratch, from: 0, count: 4, at: 0, memory: memory)
                written = 4
                transportResetPending = false
            }
            queue.putUsed(head: chain.head, length: written)
            return true
        }
        return false
    }

    // MARK: Connections

    /// Closes `connection`'s host stream and forgets it; with `resetGuest`, the guest is sent RST.
    func tearDown(_ connection: VsockConnection, resetGuest: Bool) {
        if connection.watched != nil { context?.unwatch(connection.stream.rawValue) }
        connection.watched = nil
        connections[connection.key] = nil
        connectionsByToken[connection.token] = nil
        counters.connectionsOpen.add(-1, ordering: .relaxed)
        guard resetGuest else { return }
        var reset = VsockHeader()
        reset.sourceCID = Self.hostCID
        reset.destinationCID = guestCID
        reset.sourcePort = connection.key.localPort
        reset.destinationPort = connection.key.peerPort
        reset.operation = VsockOperation.reset
        queueControl(reset)
    }

    /// Registers, changes or removes the host socket in epoll to match what the connection waits for.
    func updateInterest(_ connection: VsockConnection) {
        let wanted = connection.wantedInterest
        guard wanted != connection.watched, !(wanted.isEmpty && connection.watched == nil) else { return }
        let fd = connection.stream.rawValue
        do throws(SystemCallError) {
            if wanted.isEmpty {  // unregistered, since epoll reports hang-ups even with no interest
                context?.unwatch(fd)
                connection.watched = nil
            } else if connection.watched == nil {
                try context?.watch(fd, interest: wanted, token: connection.token)
                connection.watched = wanted
            } else {
                try context?.change(fd, interest: wanted, token: connection.token)
                connection.watched = wanted
            }
        } catch {
            tearDown(connection, resetGuest: true)
        }
    }

    /// Adds a connection to the table.
    func insert(_ connection: VsockConnection) {
        connections[connection.key] = connection
        connectionsByToken[connection.token] = connection.key
        counters.connectionsOpened.add(1, ordering: .relaxed)
        counters.connectionsOpen.add(1, ordering: .relaxed)
    }

    /// A token no host descriptor of this device uses.
    func allocateToken() -> UInt32 {
        while true {
            let token = nextToken
            nextToken = nextToken == .max ? 1 : nextToken + 1
            if token != Self.listenerToken, connectionsByToken[token] == nil, handshakes[token] == nil { return token }
        }
    }

    /// A host-side port for a connection to guest port `peerPort` that no other uses.
    func allocateLocalPort(peerPort: UInt32) -> UInt32 {
        while true {
            let port = nextLocalPort
            nextLocalPort = nextLocalPort == .max - 1 ? Self.firstLocalPort : nextLocalPort + 1
            if connections[VsockKey(localPort: port, peerPort: peerPort)] == nil { return port }
        }
    }

    /// Drops every connection and unfinished handshake without telling the guest.
    func dropEverything() {
        for connection in Array(connections.values) { tearDown(connection, resetGuest: false) }
        for handshake in handshakes.values { context?.unwatch(handshake.stream.rawValue) }
        handshakes.removeAll()
        scheduled.removeAll(keepingCapacity: true)
        scheduledHead = 0
        controlBacklog.removeAll(keepingCapacity: true)
        controlHead = 0
    }
}
