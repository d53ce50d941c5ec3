import LinuxSystem

/// Live update: the device's host side goes to the new process whole. The listener, every
/// connection's host stream and every unfinished handshake are kept open across exec; the
/// connection table (`VsockHandoverState`) carries the rest, so a stream open during the
/// update carries on with no byte lost or repeated, and the guest is told nothing.
extension VirtioVsock {
    package static let listenerDescriptorName = "listener"

    /// The listener, the streams and the table (the machine paused, the I/O thread stopped).
    /// Nothing changes here: if exec fails the device carries on as it was.
    package func handOver() -> VirtioHandover? {
        var descriptors = [VirtioHandover.Descriptor(name: Self.listenerDescriptorName, descriptor: listener.rawValue)]
        var state = VsockHandoverState()
        state.nextLocalPort = nextLocalPort
        state.transportResetPending = transportResetPending
        let ordered = connections.values.sorted { ($0.key.peerPort, $0.key.localPort) < ($1.key.peerPort, $1.key.localPort) }
        for connection in ordered {
            var flags: VsockHandoverState.Flag = []
            let bits: [(Bool, VsockHandoverState.Flag)] = [
                (connection.hostInitiated, .hostInitiated), (connection.established, .established),
                (connection.owesRequest, .owesRequest), (connection.owesResponse, .owesResponse),
                (connection.owesCreditUpdate, .owesCreditUpdate), (connection.owesShutdown, .owesShutdown),
                (connection.hostReadable, .hostReadable), (connection.hostEnded, .hostEnded),
                (connection.guestStoppedReceiving, .guestStoppedReceiving), (connection.guestStoppedSending, .guestStoppedSending),
                (connection.hostWritingShut, .hostWritingShut),
            ]
            for (set, flag) in bits where set { flags.insert(flag) }
            let saved = VsockHandoverState.Connection(
                key: connection.key, flags: flags, peerBufferAllocation: connection.peerBufferAllocation,
                peerForwardCount: connection.peerForwardCount, sentBytes: connection.sentBytes, receivedBytes: connection.receivedBytes,
                forwarded: connection.forwarded, advertisedForwardCount: connection.advertisedForwardCount,
                outbound: connection.outbound.contents)
            state.connections.append(saved)
            descriptors.append(.init(name: saved.descriptorName, descriptor: connection.stream.rawValue))
        }
        for key in scheduled.waiting where connections[key] != nil && !state.scheduled.contains(key) {
            state.scheduled.append(key)
        }
        for (token, handshake) in handshakes.sorted(by: { $0.key < $1.key }) {
            let saved = VsockHandoverState.Handshake(id: token, line: handshake.line)
            state.handshakes.append(saved)
            descriptors.append(.init(name: saved.descriptorName, descriptor: handshake.stream.rawValue))
        }
        state.control = Array(controlBacklog.waiting)
        return VirtioHandover(descriptors: descriptors, state: state.encoded())
    }

    /// Takes up the table and streams the previous process handed over, once the transport
    /// runs again: every descriptor is checked to be there before any is adopted, and each is
    /// close-on-exec again once it is.
    func continueConnections(_ kept: VirtioHandover) throws(VirtioHandoverError) {
        let state = try VsockHandoverState(decoding: kept.state)
        var streams: [CInt] = []
        for name in state.connections.map(\.descriptorName) + state.handshakes.map(\.descriptorName) {
            guard let descriptor = kept.descriptor(named: name) else { throw .missingDescriptor(name: name) }
            streams.append(descriptor)
        }
        func adopt(_ descriptor: CInt) -> NonBlockingStream {
            let owned = OwnedFileDescriptor(taking: descriptor)
            owned.setCloseOnExec(true)
            return NonBlockingStream(taking: owned)
        }
        nextLocalPort = max(state.nextLocalPort, Self.firstLocalPort)
        for (saved, descriptor) in zip(state.connections, streams) {
            let flags = saved.flags
            let connection = VsockConnection(
                key: saved.key, stream: adopt(descriptor), token: allocateToken(), hostInitiated: flags.contains(.hostInitiated),
                bufferAllocation: Self.bufferAllocation)
            connection.established = flags.contains(.established)
            connection.owesRequest = flags.contains(.owesRequest)
            connection.owesResponse = flags.contains(.owesResponse)
            connection.owesCreditUpdate = flags.contains(.owesCreditUpdate)
            connection.owesShutdown = flags.contains(.owesShutdown)
            connection.hostReadable = flags.contains(.hostReadable)
            connection.hostEnded = flags.contains(.hostEnded)
            connection.guestStoppedReceiving = flags.contains(.guestStoppedReceiving)
            connection.guestStoppedSending = flags.contains(.guestStoppedSending)
            connection.hostWritingShut = flags.contains(.hostWritingShut)
            connection.peerBufferAllocation = saved.peerBufferAllocation
            connection.peerForwardCount = saved.peerForwardCount
            connection.sentBytes = saved.sentBytes
            connection.receivedBytes = saved.receivedBytes
            connection.forwarded = saved.forwarded
            connection.advertisedForwardCount = saved.advertisedForwardCount
            connection.outbound.append(saved.outbound)
            insert(connection)
        }
        for (saved, descriptor) in zip(state.handshakes, streams.dropFirst(state.connections.count)) {
            let handshake = VsockHandshake(stream: adopt(descriptor), token: allocateToken())
            handshake.line = saved.line
            handshakes[handshake.token] = handshake
            if (try? context?.watch(handshake.stream.rawValue, interest: .readable, token: handshake.token)) == nil {
                handshakes[handshake.token] = nil  // closes the client, as a full table would
            }
        }
        controlBacklog.replace(with: state.control)
        // Turns as they were, then anything else owed (schedule skips those already in line).
        for key in state.scheduled { if let connection = connections[key] { schedule(connection) } }
        for connection in Array(connections.values) {
            if connection.hasWork { schedule(connection) }
            updateInterest(connection)
        }
        if hasReceiveWork { wakeReceive() }
        if state.transportResetPending {
            transportResetPending = true
            context?.wake(queue: Self.eventQueue)
        }
    }
}
