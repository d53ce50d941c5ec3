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
package final class VirtioVsock: VirtioBackend, @unchecked Sendable {
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
    /// How long a host client's connection waits for the guest to accept it (Firecracker's
    /// CONN_REQUEST_TIMEOUT_MS): then the client is closed and the guest sent RST.
    package static let requestTimeout: UInt64 = 2_000_000_000

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

    /// Connections with something for the guest, first come first served, each at most once.
    var scheduled = TakeFirstQueue<VsockKey>(reservingCapacity: VirtioVsock.connectionLimit)
    /// Resets for packets that belong to no connection.
    var controlBacklog = TakeFirstQueue<VsockHeader>(reservingCapacity: VirtioVsock.controlBacklogLimit)
    var receiveWakePending = false
    var transportResetPending = false
    /// Host clients' connections waiting for the guest's RESPONSE, oldest (earliest deadline) first.
    var pendingRequests = TakeFirstQueue<(key: VsockKey, token: UInt32, deadline: UInt64)>(reservingCapacity: VirtioVsock.connectionLimit)
    let clock: @Sendable () -> UInt64

    var chain: DescriptorChain
    /// A receive buffer taken from the ring that the last packet did not need after all.
    var receiveChainHeld = false
    var receiveChain: DescriptorChain
    var scratch = [UInt8](repeating: 0, count: VsockHeader.size + VirtioVsock.payloadLimit)

    /// Listens at `path` for host clients (see `UnixStreamListener` for what it replaces), or,
    /// in a live update's new process, goes on with the listener the previous one kept open.
    package init(
        guestCID: UInt64, path: String, adoptingListener inherited: OwnedFileDescriptor? = nil, counters: VsockCounters = VsockCounters(),
        clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }
    ) throws(SystemError) {
        self.guestCID = guestCID
        self.clock = clock
        self.path = path
        self.counters = counters
        if let inherited {
            listener = try UnixStreamListener(adopting: inherited, path: path)
        } else {
            listener = try UnixStreamListener(path: path)
        }
        chain = DescriptorChain(capacity: Int(Self.queueSize))
        receiveChain = DescriptorChain(capacity: Int(Self.queueSize))
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

    /// After a restore or migration the host ends of the guest's connections stayed with the old
    /// VMM: the guest learns they are gone through a transport reset (as with Firecracker);
    /// listeners stay. After a live update they came along (`kept`): every connection goes on.
    package func restored(kept: VirtioHandover?) throws(VirtioHandoverError) -> Bool {
        if let kept { try continueConnections(kept) } else { resetTransport() }
        return false
    }

    package func heldChains(queue index: Int) -> UInt16 { index == Self.receiveQueue && receiveChainHeld ? 1 : 0 }

    /// The configuration it was made with (what a snapshot saves).
    package var configuration: VsockConfiguration { VsockConfiguration(guestCID: guestCID, path: path) }

    /// The receive and event queues keep their buffers until there is something to put in them.
    package func holdsBuffers(queue index: Int) -> Bool { index != Self.transmitQueue }

    package func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        expireRequests()
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
        // Out of the turns too: a new connection on the same ports must not find its key listed twice.
        if connection.scheduled {
            scheduled.removeFirst { $0 == connection.key }
            connection.scheduled = false
        }
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
        do throws(SystemError) {
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

    /// Adds a connection to the table; a host client's that the guest has not accepted gets its deadline.
    func insert(_ connection: VsockConnection) {
        connections[connection.key] = connection
        connectionsByToken[connection.token] = connection.key
        if connection.hostInitiated, !connection.established {
            pendingRequests.append((connection.key, connection.token, clock() &+ Self.requestTimeout))
        }
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
        scheduled.removeAll()
        controlBacklog.removeAll()
        pendingRequests.removeAll()
    }

    // MARK: Requests the guest does not answer

    /// The earliest deadline of a host client's connection still waiting for the guest.
    package var timerDeadline: UInt64? {
        pendingRequests.waiting.first { isWaiting($0.key, $0.token) }?.deadline
    }

    private func isWaiting(_ key: VsockKey, _ token: UInt32) -> Bool {
        guard let connection = connections[key] else { return false }
        return connection.token == token && !connection.established
    }

    /// Closes the host clients whose connections the guest left unanswered past the timeout,
    /// and sends the guest RST for each (a late RESPONSE then meets no connection and is refused).
    func expireRequests() {
        guard !pendingRequests.isEmpty else { return }
        let now = clock()
        while let entry = pendingRequests.first {
            if isWaiting(entry.key, entry.token), let connection = connections[entry.key] {
                guard entry.deadline <= now else { break }
                counters.requestTimeouts.add(1, ordering: .relaxed)
                tearDown(connection, resetGuest: true)
            }
            _ = pendingRequests.takeFirst()
        }
    }
}
