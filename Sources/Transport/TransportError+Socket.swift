import LinuxSystem

extension TransportError {
    /// A socket failure, told the way the page protocol's messages tell it.
    package init(_ error: SystemError) {
        switch error {
        case .address(let text, let reason): self = .address(text, reason: reason)
        case .closed(let peer): self = .closed(peer: peer)
        case .tls(let peer, let reason): self = .tls(peer: peer, reason: reason)
        case .failed, .refused, .addressInUse, .compression: self = .socket(peer: error.subject, call: error.call, error.errno)
        }
    }
}
