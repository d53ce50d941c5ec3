import Glibc
import LinuxSystem
import SystemPackage

/// Reads the user's keys from standard input and hands them to the guest's UART.
///
/// Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, as in QEMU. A full UART FIFO holds the keys
/// back (the guest reads at its own pace), but not the reader: it goes on reading, so Ctrl-A x
/// quits even when the guest never reads its UART (or set it in loopback), and it holds at most
/// `pendingLimit` keys meanwhile. End of input stops reading once the keys read are delivered.
struct ConsoleInput {
    static let escape: UInt8 = 0x01
    static let pendingLimit = 64 << 10

    let deliver: @Sendable ([UInt8]) -> Int
    let quit: @Sendable () -> Void
    var input = FileDescriptor.standardInput

    func run() {
        var buffer = [UInt8](repeating: 0, count: 256)
        var escaped = false
        var pending: [UInt8] = []
        while true {
            if pending.isEmpty || Poll.isReadable(input.rawValue, milliseconds: 1) {
                guard let count = try? input.read(into: &buffer), count > 0 else {
                    deliverAll(&pending)
                    return
                }
                for byte in buffer[0..<count] {
                    var key: UInt8?
                    if escaped {
                        escaped = false
                        if byte == UInt8(ascii: "x") || byte == UInt8(ascii: "X") { quit(); return }
                        key = byte
                    } else if byte == Self.escape {
                        escaped = true
                    } else {
                        key = byte
                    }
                    if let key, pending.count < Self.pendingLimit { pending.append(key) }
                }
            }
            if !pending.isEmpty { pending.removeFirst(deliver(pending)) }
        }
    }

    /// Delivers what is left after the end of input, as the guest takes it.
    private func deliverAll(_ pending: inout [UInt8]) {
        while !pending.isEmpty {
            pending.removeFirst(deliver(pending))
            if !pending.isEmpty { usleep(1000) }
        }
    }
}
