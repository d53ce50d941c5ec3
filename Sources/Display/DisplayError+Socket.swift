import LinuxSystem

extension DisplayError {
    /// A socket or zlib failure, told the way the display's messages tell it.
    package init(_ error: SystemError) {
        switch error {
        case .address(let text, let reason): self = .address(text, reason: reason)
        case .addressInUse(let text): self = .addressInUse(text)
        case .closed(let peer): self = .closed(peer: peer)
        case .compression(let call, let code): self = .compression(call: call, code: code)
        case .failed, .refused, .tls: self = .socket(peer: error.subject, call: error.call, error.errno)
        }
    }
}
