extension Serial8250 {
    /// Everything the UART holds, for snapshots: its registers, the receive FIFO's contents and
    /// the pending interrupt flags.
    ///
    /// Only `Serial8250.saveState()` and decoding make one, and decoding checks every field,
    /// so `restoreState(_:)` cannot be handed a state the device could not have been in.
    /// The interrupt line's level is not part of it: restore derives it from the registers.
    package struct State: Codable, Sendable, Equatable {
        /// IER: which interrupt sources are enabled (bits 0–3).
        package let interruptEnable: UInt8
        /// FCR as last written: FIFO enable, DMA mode and trigger level (the reset bits read as zero).
        package let fifoControl: UInt8
        /// LCR: word length, stop bits, parity and DLAB.
        package let lineControl: UInt8
        /// MCR: DTR, RTS, OUT1, OUT2 and loopback (bits 0–4).
        package let modemControl: UInt8
        /// LSR error bits the guest has not read yet (overrun).
        package let lineStatusErrors: UInt8
        /// MSR delta bits the guest has not read yet (bits 0–3).
        package let modemStatusDeltas: UInt8
        /// SCR, the scratch register.
        package let scratch: UInt8
        /// The baud-rate divisor latch (DLM:DLL).
        package let divisor: UInt16
        /// Whether a THR-empty interrupt is waiting to be acknowledged.
        package let transmitInterruptPending: Bool
        /// The bytes in the receive FIFO, oldest first.
        package let receivedBytes: [UInt8]

        enum CodingKeys: String, CodingKey {
            case interruptEnable, fifoControl, lineControl, modemControl, lineStatusErrors
            case modemStatusDeltas, scratch, divisor, transmitInterruptPending, receivedBytes
        }

        /// Why these field values are not a state the UART could be in, or nil when they are.
        var inconsistency: String? {
            if interruptEnable & ~0x0f != 0 { return "IER \(hex(interruptEnable)) sets bits above 3" }
            if fifoControl & ~RegisterFile.fifoControlStoredBits != 0 || (fifoControl != 0 && fifoControl & 0x01 == 0) {
                return "FCR \(hex(fifoControl)) is not a value the FIFO control register keeps"
            }
            if modemControl & ~0x1f != 0 { return "MCR \(hex(modemControl)) sets bits above 4" }
            if lineStatusErrors & ~RegisterFile.lineErrorBits != 0 {
                return "LSR error bits \(hex(lineStatusErrors)) include bits that are not errors"
            }
            if modemStatusDeltas & ~0x0f != 0 { return "MSR deltas \(hex(modemStatusDeltas)) set bits above 3" }
            if receivedBytes.count > Serial8250.fifoCapacity {
                return "the receive FIFO holds \(receivedBytes.count) bytes; it has room for \(Serial8250.fifoCapacity)"
            }
            return nil
        }

        private func hex(_ value: UInt8) -> String { "0x" + String(value, radix: 16) }
    }
}

extension Serial8250.State {
    /// Decodes a saved UART state and refuses values the device could not have held.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            interruptEnable: try container.decode(UInt8.self, forKey: .interruptEnable),
            fifoControl: try container.decode(UInt8.self, forKey: .fifoControl),
            lineControl: try container.decode(UInt8.self, forKey: .lineControl),
            modemControl: try container.decode(UInt8.self, forKey: .modemControl),
            lineStatusErrors: try container.decode(UInt8.self, forKey: .lineStatusErrors),
            modemStatusDeltas: try container.decode(UInt8.self, forKey: .modemStatusDeltas),
            scratch: try container.decode(UInt8.self, forKey: .scratch),
            divisor: try container.decode(UInt16.self, forKey: .divisor),
            transmitInterruptPending: try container.decode(Bool.self, forKey: .transmitInterruptPending),
            receivedBytes: try container.decode([UInt8].self, forKey: .receivedBytes))
        if let inconsistency {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "serial 8250 state: \(inconsistency)"))
        }
    }
}
