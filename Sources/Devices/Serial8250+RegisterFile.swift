extension Serial8250 {
    /// The UART's live registers and receive FIFO, kept under the device's lock.
    ///
    /// Offsets from the base port: 0 RBR/THR (DLL while LCR.DLAB), 1 IER (DLM while LCR.DLAB),
    /// 2 IIR (read) / FCR (write), 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR. Transmission is instantaneous,
    /// so the transmitter is always empty (LSR.THRE and LSR.TEMT read as 1).
    struct RegisterFile {
        // IIR interrupt identification, highest priority first.
        static let lineStatusInterrupt: UInt8 = 0x06
        static let receivedDataInterrupt: UInt8 = 0x04
        static let transmitterEmptyInterrupt: UInt8 = 0x02
        static let modemStatusInterrupt: UInt8 = 0x00
        static let noInterruptPending: UInt8 = 0x01
        static let fifosEnabled: UInt8 = 0xc0

        // IER bits.
        static let receivedDataEnable: UInt8 = 0x01
        static let transmitterEmptyEnable: UInt8 = 0x02
        static let lineStatusEnable: UInt8 = 0x04
        static let modemStatusEnable: UInt8 = 0x08

        // LSR bits.
        static let dataReady: UInt8 = 0x01
        static let overrunError: UInt8 = 0x02
        static let lineErrorBits: UInt8 = 0x1e  // OE, PE, FE, BI
        static let transmitterIdle: UInt8 = 0x60  // THRE | TEMT

        // FCR bits.
        static let fifoEnable: UInt8 = 0x01
        static let clearReceiveFIFO: UInt8 = 0x02
        static let fifoControlStoredBits: UInt8 = 0xc9  // enable, DMA mode, trigger level

        // LCR and MCR bits.
        static let divisorLatchAccessBit: UInt8 = 0x80
        static let loopbackBit: UInt8 = 0x10

        // MSR input lines (bits 4–7).
        static let clearToSend: UInt8 = 0x10
        static let dataSetReady: UInt8 = 0x20
        static let ringIndicator: UInt8 = 0x40
        static let carrierDetect: UInt8 = 0x80

        // Power-on values as firmware leaves them: 9600 baud 8N1, OUT2 set (QEMU's reset state).
        var interruptEnable: UInt8 = 0
        var fifoControl: UInt8 = 0
        var lineControl: UInt8 = 0x03
        var modemControl: UInt8 = 0x08
        var lineStatusErrors: UInt8 = 0
        var modemStatusDeltas: UInt8 = 0
        var scratch: UInt8 = 0
        var divisor: UInt16 = 12
        var transmitInterruptPending = false
        var receiveFIFO = ByteRing(capacity: Serial8250.fifoCapacity)
        /// The level last driven on the interrupt line: belongs to the wiring, not to the snapshot.
        var interruptLineRaised = false

        init() {}

        var divisorLatchAccess: Bool { lineControl & Self.divisorLatchAccessBit != 0 }
        var loopback: Bool { modemControl & Self.loopbackBit != 0 }
        var fifoEnabled: Bool { fifoControl & Self.fifoEnable != 0 }

        var lineStatus: UInt8 { (receiveFIFO.isEmpty ? 0 : Self.dataReady) | lineStatusErrors | Self.transmitterIdle }

        /// The modem input lines (MSR bits 4–7): in loopback wired to the modem outputs as on a
        /// 16550 (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD); otherwise carrier, DSR and CTS are up.
        var modemInputs: UInt8 {
            guard loopback else { return Self.carrierDetect | Self.dataSetReady | Self.clearToSend }
            return (modemControl & 0x02) << 3 | (modemControl & 0x01) << 5 | (modemControl & 0x0c) << 4
        }

        /// The highest-priority pending interrupt source (16550 order), or `noInterruptPending`.
        var pendingInterrupt: UInt8 {
            if interruptEnable & Self.lineStatusEnable != 0 && lineStatusErrors != 0 { return Self.lineStatusInterrupt }
            if interruptEnable & Self.receivedDataEnable != 0 && !receiveFIFO.isEmpty { return Self.receivedDataInterrupt }
            if interruptEnable & Self.transmitterEmptyEnable != 0 && transmitInterruptPending { return Self.transmitterEmptyInterrupt }
            if interruptEnable & Self.modemStatusEnable != 0 && modemStatusDeltas != 0 { return Self.modemStatusInterrupt }
            return Self.noInterruptPending
        }

        /// A guest read of the register at `offset`, with its side effects (popping RBR, acknowledging).
        mutating func read(offset: Int) -> UInt8 {
            switch offset {
            case 0 where divisorLatchAccess: return UInt8(truncatingIfNeeded: divisor)
            case 0: return receiveFIFO.removeFirst() ?? 0
            case 1 where divisorLatchAccess: return UInt8(truncatingIfNeeded: divisor >> 8)
            case 1: return interruptEnable
            case 2:
                let source = pendingInterrupt
                // Reading IIR acknowledges a THR-empty interrupt, but only when it is the one reported.
                if source == Self.transmitterEmptyInterrupt { transmitInterruptPending = false }
                return source | (fifoEnabled ? Self.fifosEnabled : 0)
            case 3: return lineControl
            case 4: return modemControl
            case 5:
                let status = lineStatus
                lineStatusErrors = 0
                return status
            case 6:
                let status = modemInputs | modemStatusDeltas
                modemStatusDeltas = 0
                return status
            default: return scratch
            }
        }

        /// A guest write to the register at `offset`. Returns the byte to send when it is a write to
        /// THR outside loopback: the caller hands it to the output sink, then calls `transmitterEmptied()`.
        mutating func write(offset: Int, _ value: UInt8, line: any InterruptLine) -> UInt8? {
            switch offset {
            case 0 where divisorLatchAccess: divisor = divisor & 0xff00 | UInt16(value)
            case 0:
                // Writing THR acknowledges THR-empty; the line falls so the byte's completion gives a fresh edge.
                transmitInterruptPending = false
                guard loopback else { return value }
                updateInterruptLine(line)
                if !receiveFIFO.append(value) { lineStatusErrors |= Self.overrunError }
                transmitterEmptied()
            case 1 where divisorLatchAccess: divisor = divisor & 0x00ff | UInt16(value) << 8
            case 1:
                let enabled = value & 0x0f
                let changed = enabled ^ interruptEnable
                interruptEnable = enabled
                if changed & Self.transmitterEmptyEnable != 0 {
                    // Turning THRI on while THR is empty (it always is) raises it afresh, as QEMU and Bochs
                    // do; Linux's startup test (UART_BUG_THRE) toggles IER and expects it.
                    transmitInterruptPending = enabled & Self.transmitterEmptyEnable != 0
                }
            case 2: writeFIFOControl(value)
            case 3: lineControl = value
            case 4:
                let before = modemInputs
                modemControl = value & 0x1f
                noteModemInputChange(from: before)
            case 7: scratch = value
            default: break  // LSR and MSR: writes are for factory testing, ignored
            }
            return nil
        }

        /// The byte written to THR has left: the holding register is empty again.
        mutating func transmitterEmptied() {
            transmitInterruptPending = interruptEnable & Self.transmitterEmptyEnable != 0
        }

        /// Bytes from the outside world; returns how many fitted. Offering more than fits sets LSR.OE.
        /// In loopback the receiver is disconnected from the line and takes nothing.
        mutating func receive(_ bytes: some Collection<UInt8>) -> Int {
            guard !loopback else { return 0 }
            var accepted = 0
            for byte in bytes {
                guard receiveFIFO.append(byte) else {
                    lineStatusErrors |= Self.overrunError
                    break
                }
                accepted += 1
            }
            return accepted
        }

        /// Drives the interrupt line to match the pending sources; calls the line only on a change.
        mutating func updateInterruptLine(_ line: any InterruptLine) {
            let raised = pendingInterrupt != Self.noInterruptPending
            guard raised != interruptLineRaised else { return }
            interruptLineRaised = raised
            line.set(level: raised)
        }

        private mutating func writeFIFOControl(_ value: UInt8) {
            let enable = value & Self.fifoEnable != 0
            // Toggling the enable bit resets both FIFOs; bit 1 resets the receive FIFO.
            // The transmit FIFO is always empty, so bit 2 has nothing to do.
            if enable != fifoEnabled || value & Self.clearReceiveFIFO != 0 { receiveFIFO.removeAll() }
            fifoControl = enable ? value & Self.fifoControlStoredBits : 0
        }

        /// Sets MSR delta bits for input lines that changed (in loopback they follow MCR):
        /// DCTS, DDSR and DDCD on any change, TERI when RI falls.
        private mutating func noteModemInputChange(from before: UInt8) {
            let after = modemInputs
            var deltas = ((before ^ after) >> 4) & 0x0b
            if before & Self.ringIndicator != 0 && after & Self.ringIndicator == 0 { deltas |= 0x04 }
            modemStatusDeltas |= deltas
        }

        /// Loads a saved state; the interrupt line's level is kept, so the caller's next
        /// `updateInterruptLine` drives only a real difference.
        init(restoring state: State, lineRaised: Bool) {
            interruptEnable = state.interruptEnable
            fifoControl = state.fifoControl
            lineControl = state.lineControl
            modemControl = state.modemControl
            lineStatusErrors = state.lineStatusErrors
            modemStatusDeltas = state.modemStatusDeltas
            scratch = state.scratch
            divisor = state.divisor
            transmitInterruptPending = state.transmitInterruptPending
            receiveFIFO.replaceContents(with: state.receivedBytes)
            interruptLineRaised = lineRaised
        }

        var state: State {
            State(interruptEnable: interruptEnable, fifoControl: fifoControl, lineControl: lineControl,
                  modemControl: modemControl, lineStatusErrors: lineStatusErrors, modemStatusDeltas: modemStatusDeltas,
                  scratch: scratch, divisor: divisor, transmitInterruptPending: transmitInterruptPending,
                  receivedBytes: receiveFIFO.contents)
        }
    }
}
