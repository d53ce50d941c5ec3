import Glibc
import LinuxSystem
import SystemPackage

/// Reads the user's keys from standard input and hands them to the guest's UART.
///
/// Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, as in QEMU. A full UART FIFO holds
/// the reader back (the guest reads at its own pace); end of input just stops reading.
struct ConsoleInput {
    static let escape: UInt8 = 0x01

    let deliver: @Sendable ([UInt8]) -> Int
    let quit: @Sendable () -> Void

    func run() {
        var buffer = [UInt8](repeating: 0, count: 256)
        var escaped = false
        while true {
            guard let count = try? FileDescriptor.standardInput.read(into: &buffer), count > 0 else { return }
            var pending: [UInt8] = []
            for byte in buffer[0..<count] {
                if escaped {
                    escaped = false
                    if byte == UInt8(ascii: "x") || byte == UInt8(ascii: "X") { quit(); return }
                    pending.append(byte == Self.escape ? Self.escape : byte)
                } else if byte == Self.escape {
                    escaped = true
                } else {
                    pending.append(byte)
                }
            }
            while !pending.isEmpty {
                let accepted = deliver(pending)
                pending.removeFirst(accepted)
                if !pending.isEmpty { usleep(1000) }
            }
        }
    }
}
