extension I8042 {
    /// The controller's registers and output queue.
    package struct Registers: Codable, Sendable, Equatable {
        /// What the next byte written to the data port means.
        enum PendingData: UInt8, Codable { case none, commandByte, outputPort, keyboardLEDs, keyboardTypematic }

        var commandByte: UInt8 = 0x45  // keyboard interrupt on, system flag, scancode translation
        var lastWasCommand = false
        var pendingData = PendingData.none
        var interruptLevel = false
        var output = [UInt8](repeating: 0, count: I8042.outputBufferCapacity)
        var outputHead = 0
        var outputCount = 0

        /// OBF, system flag, command/data, keyboard not inhibited.
        var status: UInt8 {
            (outputCount > 0 ? 0x01 : 0) | 0x04 | (lastWasCommand ? 0x08 : 0) | 0x10
        }

        mutating func pushOutput(_ byte: UInt8) -> Bool {
            guard outputCount < output.count else { return false }
            output[(outputHead + outputCount) % output.count] = byte
            outputCount += 1
            return true
        }

        mutating func popOutput() -> UInt8 {
            guard outputCount > 0 else { return 0 }
            let byte = output[outputHead]
            outputHead = (outputHead + 1) % output.count
            outputCount -= 1
            return byte
        }

        /// A controller command on port 0x64; returns true when it asks for a reset.
        mutating func writeCommand(_ command: UInt8) -> Bool {
            lastWasCommand = true
            switch command {
            case 0x20: _ = pushOutput(commandByte)
            case 0x60: pendingData = .commandByte
            case 0xa7: commandByte |= 0x20
            case 0xa8: commandByte &= ~0x20
            case 0xaa: _ = pushOutput(0x55)        // self-test passed
            case 0xab: _ = pushOutput(0x00)        // keyboard interface OK
            case 0xad: commandByte |= 0x10
            case 0xae: commandByte &= ~0x10
            case 0xd0: _ = pushOutput(0x03)        // output port: reset line high, A20 on
            case 0xd1: pendingData = .outputPort
            case 0xfe: return true                 // pulse the reset line
            default: break
            }
            return false
        }

        /// A byte on port 0x60: an argument to the last command, or a command for the keyboard itself.
        mutating func writeData(_ byte: UInt8) -> Bool {
            lastWasCommand = false
            let pending = pendingData
            pendingData = .none
            switch pending {
            case .commandByte: commandByte = byte; return false
            case .outputPort: return byte & 0x01 == 0  // clearing bit 0 resets the CPU
            case .keyboardLEDs, .keyboardTypematic: _ = pushOutput(0xfa); return false
            case .none: break
            }
            switch byte {
            case 0xff: _ = pushOutput(0xfa); _ = pushOutput(0xaa)       // reset: ACK, self-test passed
            case 0xf4, 0xf5, 0xf6: _ = pushOutput(0xfa)
            case 0xed: _ = pushOutput(0xfa); pendingData = .keyboardLEDs
            case 0xf3: _ = pushOutput(0xfa); pendingData = .keyboardTypematic
            case 0xf2: _ = pushOutput(0xfa); _ = pushOutput(0xab); _ = pushOutput(0x83)
            case 0xee: _ = pushOutput(0xee)
            default: _ = pushOutput(0xfe)                              // resend
            }
            return false
        }
    }
}
