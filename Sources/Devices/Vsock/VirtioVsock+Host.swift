import LinuxSystem

/// Host sockets: the listener host clients connect to, their `CONNECT <port>` lines, and the
/// connections' streams.
extension VirtioVsock {
    package func serveHostEvent(token: UInt32, _ event: Epoll.Event) {
        guard running else { return }
        if token == Self.listenerToken {
            acceptClients()
        } else if let handshake = handshakes[token] {
            readHandshake(handshake)
        } else if let key = connectionsByToken[token], let connection = connections[key] {
            serveStream(connection, event)
        }
    }

    /// Takes the clients waiting on the listener (a few per wake-up, so the guest's traffic is not starved).
    private func acceptClients() {
        for _ in 0..<16 {
            guard let stream = listener.accept() else { return }
            guard connections.count + handshakes.count < Self.connectionLimit else { continue }  // closed at once
            let handshake = VsockHandshake(stream: stream, token: allocateToken())
            guard (try? context?.watch(stream.rawValue, interest: .readable, token: handshake.token)) != nil else { continue }
            handshakes[handshake.token] = handshake
        }
    }

    /// Reads the client's line a byte at a time, so nothing after its newline is taken before the
    /// guest accepts; then asks the guest's port with a REQUEST. Anything but `CONNECT <port>\n`
    /// closes the client.
    private func readHandshake(_ handshake: VsockHandshake) {
        while true {
            switch handshake.stream.receive(into: &scratch, at: 0, count: 1) {
            case .wouldBlock: return
            case .closed, .failed:
                dropHandshake(handshake)
                return
            case .moved:
                let byte = scratch[0]
                guard byte == UInt8(ascii: "\n") else {
                    handshake.line.append(byte)
                    if handshake.line.count > VsockHandshake.lineLimit { dropHandshake(handshake) ; return }
                    continue
                }
                dropHandshake(handshake)
                guard let port = VsockHandshake.port(of: handshake.line), connections.count < Self.connectionLimit else { return }
                let connection = VsockConnection(
                    key: VsockKey(localPort: allocateLocalPort(peerPort: port), peerPort: port), stream: handshake.stream,
                    token: allocateToken(), hostInitiated: true, bufferAllocation: Self.bufferAllocation)
                connection.owesRequest = true
                insert(connection)
                schedule(connection)
                return
            }
        }
    }

    private func dropHandshake(_ handshake: VsockHandshake) {
        context?.unwatch(handshake.stream.rawValue)
        handshakes[handshake.token] = nil
    }

    /// The host stream has input (or an end, or an error) for the guest, or room for the guest's bytes.
    private func serveStream(_ connection: VsockConnection, _ event: Epoll.Event) {
        if event.writable || (event.failed && !connection.outbound.isEmpty) {
            guard flush(connection) else { return }
        }
        if event.readable || event.failed, connection.established, !connection.hostEnded, !connection.guestStoppedReceiving {
            connection.hostReadable = true  // read when the guest has a buffer and credit for it
        }
        if connection.hasWork { schedule(connection) }
        updateInterest(connection)
    }
}
