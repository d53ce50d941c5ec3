import LinuxSystem

extension DisplayError {
    /// zlib refused a call while encoding.
    package init(_ error: CompressionError) { self = .compression(call: error.call, code: error.code) }

    /// A socket failure, told the way the display's messages tell it.
    package init(_ error: SocketError) {
        switch error {
        case .address(let text, let reason): self = .address(text, reason: reason)
        case .addressInUse(let text): self = .addressInUse(text)
        case .call(let peer, let call, let errno): self = .socket(peer: peer, call: call, errno)
        case .closed(let peer): self = .closed(peer: peer)
        }
    }
}
