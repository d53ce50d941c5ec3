extension Serial8250 {
    /// The UART's registers and FIFO: the whole device state, saved as-is in snapshots.
    package struct Registers: Codable, Sendable, Equatable {
        static let noInterrupt: UInt8 = 0x01
        static let lineStatusInterrupt: UInt8 = 0x06
        static let receivedDataInterrupt: UInt8 = 0x04
        static let transmitEmptyInterrupt: UInt8 = 0x02
        static let modemStatusInterrupt: UInt8 = 0x00

        static let dataReady: UInt8 = 0x01
        static let overrun: UInt8 = 0x02
        static let lineErrors: UInt8 = 0x1e
        static let transmitEmpty: UInt8 = 0x60  // THRE | TEMT: transmission is instantaneous

        var interruptEnable: UInt8 = 0
        var fifoControl: UInt8 = 0
        var lineControl: UInt8 = 0x03
        var modemControl: UInt8 = 0
        var lineStatusErrors: UInt8 = 0
        var modemStatusDeltas: UInt8 = 0
        var scratch: UInt8 = 0
        var divisorLow: UInt8 = 0x0c  // 9600 baud
        var divisorHigh: UInt8 = 0
        var transmitInterruptPending = false
        var interruptLevel = false
        var fifo = [UInt8](repeating: 0, count: Serial8250.fifoCapacity)
        var fifoHead = 0
        var receivedCount = 0

        var divisorLatchAccess: Bool { lineControl & 0x80 != 0 }
        var loopback: Bool { modemControl & 0x10 != 0 }
        var fifoEnabled: Bool { fifoControl & 0x01 != 0 }

        var lineStatus: UInt8 { Self.transmitEmpty | lineStatusErrors | (receivedCount > 0 ? Self.dataReady : 0) }

        /// Modem status: in loopback the control lines loop back (the test Linux's probe does), else carrier, DSR and CTS are up.
        var modemStatus: UInt8 {
            guard loopback else { return 0xb0 | modemStatusDeltas }
            let m = modemControl
            return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4) | modemStatusDeltas
        }

        /// The highest-priority interrupt source (16550 order), or `noInterrupt`.
        var pendingInterrupt: UInt8 {
            if interruptEnable & 0x04 != 0 && lineStatusErrors != 0 { return Self.lineStatusInterrupt }
            if interruptEnable & 0x01 != 0 && receivedCount > 0 { return Self.receivedDataInterrupt }
            if interruptEnable & 0x02 != 0 && transmitInterruptPending { return Self.transmitEmptyInterrupt }
            if interruptEnable & 0x08 != 0 && modemStatusDeltas != 0 { return Self.modemStatusInterrupt }
            return Self.noInterrupt
        }

        mutating func pushReceived(_ byte: UInt8) -> Bool {
            guard receivedCount < fifo.count else {
                lineStatusErrors |= Self.overrun
                return false
            }
            fifo[(fifoHead + receivedCount) % fifo.count] = byte
            receivedCount += 1
            return true
        }

        mutating func popReceived() -> UInt8 {
            guard receivedCount > 0 else { return 0 }
            let byte = fifo[fifoHead]
            fifoHead = (fifoHead + 1) % fifo.count
            receivedCount -= 1
            return byte
        }

        mutating func read(offset: Int) -> UInt8 {
            switch offset {
            case 0: return divisorLatchAccess ? divisorLow : popReceived()
            case 1: return divisorLatchAccess ? divisorHigh : interruptEnable
            case 2:
                let source = pendingInterrupt
                if source == Self.transmitEmptyInterrupt { transmitInterruptPending = false }  // reading IIR acknowledges it
                return source | (fifoEnabled ? 0xc0 : 0)
            case 3: return lineControl
            case 4: return modemControl
            case 5:
                let value = lineStatus
                lineStatusErrors = 0
                return value
            case 6:
                let value = modemStatus
                modemStatusDeltas = 0
                return value
            default: return scratch
            }
        }

        mutating func write(offset: Int, _ value: UInt8) {
            switch offset {
            case 0:
                if divisorLatchAccess { divisorLow = value } else if loopback {
                    _ = pushReceived(value)
                    transmitInterruptPending = true
                }
            case 1:
                if divisorLatchAccess { divisorHigh = value; return }
                let enablingTransmit = value & 0x02 != 0 && interruptEnable & 0x02 == 0
                interruptEnable = value & 0x0f
                if enablingTransmit { transmitInterruptPending = true }
            case 2:
                if (value ^ fifoControl) & 0x01 != 0 || value & 0x02 != 0 { fifoHead = 0; receivedCount = 0 }
                fifoControl = value & 0xc9
            case 3: lineControl = value
            case 4: modemControl = value & 0x1f
            case 7: scratch = value
            default: break  // LSR and MSR are read-only
            }
        }
    }
}
