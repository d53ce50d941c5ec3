import Devices
import Testing

/// The UART driven by register sequences, in the order Linux's 8250 driver uses them.
@Suite struct Serial8250Tests {
    /// Register offsets from COM1's base; reads and writes of one offset may reach different registers.
    private enum Register: UInt16 {
        case data = 0            // RBR (read) / THR (write); DLL with LCR.DLAB
        case interruptEnable = 1 // IER; DLM with LCR.DLAB
        case interruptId = 2     // IIR (read) / FCR (write)
        case lineControl = 3
        case modemControl = 4
        case lineStatus = 5
        case modemStatus = 6
        case scratch = 7
    }

    private static let base: UInt16 = 0x3f8

    private let line = RecordingInterruptLine()
    private let sent = ByteRecorder()
    private let uart: Serial8250

    init() {
        let sent = sent
        uart = Serial8250(interrupt: line, output: { sent.append($0) })
    }

    private func read(_ register: Register) -> UInt8 {
        UInt8(uart.read(port: Self.base + register.rawValue, size: 1))
    }

    private func write(_ register: Register, _ value: UInt8) {
        uart.write(port: Self.base + register.rawValue, size: 1, value: UInt32(value))
    }

    // MARK: the probe (drivers/tty/serial/8250/8250_port.c, autoconfig)

    @Test func scratchRegisterRoundTrips() {
        for value: UInt8 in [0xa5, 0x5a, 0x00, 0xff] {
            write(.scratch, value)
            #expect(read(.scratch) == value)
        }
    }

    @Test func interruptEnableReadsBackItsLowNibble() {
        write(.interruptEnable, 0)
        #expect(read(.interruptEnable) == 0)
        write(.interruptEnable, 0x0f)
        #expect(read(.interruptEnable) == 0x0f)
        write(.interruptEnable, 0xf5)
        #expect(read(.interruptEnable) == 0x05)
    }

    /// autoconfig() and autoconfig_16550a() step by step: the UART must come out as a 16550A.
    @Test func linuxAutoconfigFindsA16550A() {
        // Existence test through IER.
        let savedIER = read(.interruptEnable)
        write(.interruptEnable, 0)
        #expect(read(.interruptEnable) & 0x0f == 0)
        write(.interruptEnable, 0x0f)
        #expect(read(.interruptEnable) & 0x0f == 0x0f)
        write(.interruptEnable, savedIER)

        // Loopback test: MCR = LOOP | OUT2 | RTS must read back as DCD | CTS.
        let savedMCR = read(.modemControl)
        let savedLCR = read(.lineControl)
        write(.modemControl, 0x1a)
        #expect(read(.modemStatus) & 0xf0 == 0x90)
        write(.modemControl, savedMCR)

        // Clearing a (nonexistent) EFR writes FCR = 0 here; then FIFO detection through IIR bits 6–7.
        write(.lineControl, 0xbf)
        write(.interruptId, 0)
        write(.lineControl, 0)
        write(.interruptId, 0x01)
        #expect(read(.interruptId) >> 6 == 3)

        // 16550A variants: no EFR with DLAB set or with LCR = 0xBF, and no 64-byte FIFO bit (not a 16750).
        write(.lineControl, 0x80)
        #expect(read(.interruptId) != 0)
        write(.lineControl, 0xbf)
        #expect(read(.interruptId) != 0)
        write(.lineControl, 0)
        write(.interruptId, 0x21)
        #expect(read(.interruptId) >> 5 == 6)
        write(.lineControl, savedLCR)

        #expect(read(.lineControl) == 0x03)
        #expect(read(.modemControl) == 0x08)
        #expect(sent.bytes.isEmpty)
        #expect(line.isRaised == false)
    }

    @Test func loopbackRoutesModemControlToModemStatus() {
        #expect(read(.modemStatus) & 0xf0 == 0xb0)  // carrier, DSR, CTS up; no ring
        write(.modemControl, 0x1a)                  // LOOP | OUT2 | RTS: the probe's pattern
        #expect(read(.modemStatus) & 0xf0 == 0x90)  // DCD | CTS
        write(.modemControl, 0x10 | 0x01)           // DTR → DSR
        #expect(read(.modemStatus) & 0xf0 == 0x20)
        write(.modemControl, 0x10 | 0x04)           // OUT1 → RI
        #expect(read(.modemStatus) & 0xf0 == 0x40)
        write(.modemControl, 0x1f)
        #expect(read(.modemStatus) & 0xf0 == 0xf0)
        write(.modemControl, 0x0b)                  // loopback off again
        #expect(read(.modemControl) == 0x0b)
        #expect(read(.modemStatus) & 0xf0 == 0xb0)
    }

    @Test func loopedModemLinesSetDeltaBits() {
        write(.modemControl, 0x10)                  // loopback, outputs low: CTS, DSR, DCD all fall
        #expect(read(.modemStatus) == 0x0b)         // DCTS | DDSR | DDCD
        #expect(read(.modemStatus) == 0x00)         // reading cleared them
        write(.modemControl, 0x12)                  // RTS → CTS rises
        #expect(read(.modemStatus) == 0x11)
        write(.modemControl, 0x16)                  // OUT1 → RI rises: no delta for a rising RI
        #expect(read(.modemStatus) == 0x50)
        write(.modemControl, 0x12)                  // RI falls: trailing-edge RI
        #expect(read(.modemStatus) == 0x14)
        write(.modemControl, 0x13)                  // DTR → DSR
        #expect(read(.modemStatus) == 0x32)
    }

    @Test func modemStatusInterrupt() {
        write(.interruptEnable, 0x08)
        #expect(line.levels.isEmpty)
        write(.modemControl, 0x1a)                  // entering loopback drops DSR
        #expect(line.levels == [true])
        #expect(read(.interruptId) == 0x00)         // modem status
        #expect(read(.interruptId) == 0x00)         // reading IIR does not clear it
        #expect(read(.modemStatus) == 0x92)         // DCD | CTS, DDSR
        #expect(line.levels == [true, false])
        #expect(read(.interruptId) == 0x01)
    }

    @Test func divisorLatchIsReachedOnlyWithDLAB() {
        write(.interruptEnable, 0x05)
        write(.lineControl, 0x83)                   // DLAB | 8N1
        #expect(read(.data) == 0x0c)                // 9600 baud at power-on
        #expect(read(.interruptEnable) == 0x00)
        write(.data, 0x01)                          // 115200 baud
        write(.interruptEnable, 0x02)
        #expect(read(.data) == 0x01)
        #expect(read(.interruptEnable) == 0x02)
        write(.lineControl, 0x03)
        #expect(read(.lineControl) == 0x03)
        #expect(read(.interruptEnable) == 0x05)     // IER untouched by the DLM write
        #expect(sent.bytes.isEmpty)                 // the DLL write was not transmitted
        #expect(read(.lineStatus) & 0x01 == 0)      // nor received
        #expect(uart.saveState().divisor == 0x0201)
        write(.lineControl, 0x80)
        #expect(read(.data) == 0x01)
        #expect(read(.interruptEnable) == 0x02)
    }

    @Test func fifoIsDetectedThroughIIR() {
        #expect(read(.interruptId) == 0x01)         // no FIFO, no interrupt pending
        write(.interruptId, 0xc7)                   // FCR: enable, clear RX and TX, trigger 14
        #expect(read(.interruptId) == 0xc1)         // 16550A with FIFOs on
        #expect(uart.saveState().fifoControl == 0xc1)  // the reset bits are not kept
        write(.interruptId, 0x00)
        #expect(read(.interruptId) == 0x01)
        #expect(uart.saveState().fifoControl == 0)
    }

    @Test func fifoResetDropsReceivedBytes() {
        write(.interruptId, 0x01)
        #expect(uart.receive([1, 2, 3]) == 3)
        write(.interruptId, 0x81)                   // same enable bit, no reset bit: bytes stay
        #expect(uart.receiveSpace == 61)
        write(.interruptId, 0x03)                   // enable + clear RX
        #expect(read(.lineStatus) & 0x01 == 0)
        #expect(uart.receiveSpace == 64)
        #expect(uart.receive([4, 5]) == 2)
        write(.interruptId, 0x00)                   // turning the FIFO off resets it too
        #expect(uart.receiveSpace == 64)
        #expect(read(.lineStatus) == 0x60)
    }

    // MARK: transmit

    @Test func transmittedBytesGoToTheOutputSink() {
        for byte in "hi\n".utf8 { write(.data, byte) }
        #expect(sent.bytes == Array("hi\n".utf8))
        #expect(read(.lineStatus) == 0x60)          // THRE | TEMT: sending is instantaneous
    }

    /// The sink runs outside the device's lock: a sink that reads the UART again must not deadlock.
    @Test func outputSinkMayCallBackIntoTheDevice() {
        let slot = DeviceSlot<Serial8250>()
        let seen = ByteRecorder()
        let uart = Serial8250(interrupt: RecordingInterruptLine(), output: { byte in
            seen.append(byte)
            if let uart = slot.device {
                seen.append(UInt8(uart.read(port: Self.base + 5, size: 1)))
                seen.append(UInt8(uart.receiveSpace))
            }
        })
        slot.device = uart
        uart.write(port: Self.base, size: 1, value: 0x41)
        #expect(seen.bytes == [0x41, 0x60, 64])
    }

    @Test func loopbackReturnsTransmittedBytesInRBR() {
        write(.modemControl, 0x10)
        write(.data, 0x41)
        write(.data, 0x42)
        #expect(sent.bytes.isEmpty)
        #expect(read(.lineStatus) & 0x01 == 0x01)
        #expect(read(.data) == 0x41)
        #expect(read(.data) == 0x42)
        #expect(read(.lineStatus) & 0x01 == 0)
        #expect(uart.receive([0x43]) == 0)          // the receiver is off the line in loopback
        #expect(uart.receiveSpace == 0)
        write(.modemControl, 0x00)
        #expect(uart.receiveSpace == 64)
        #expect(uart.receive([0x43]) == 1)
        #expect(read(.data) == 0x43)
    }

    @Test func loopbackOverflowSetsOverrun() {
        write(.modemControl, 0x10)
        for byte in 0..<65 { write(.data, UInt8(byte)) }
        #expect(read(.lineStatus) == 0x63)          // DR | OE | THRE | TEMT
        var received: [UInt8] = []
        while read(.lineStatus) & 0x01 != 0 { received.append(read(.data)) }
        #expect(received == (0..<64).map { UInt8($0) })
    }

    @Test func transmitEmptyInterrupt() {
        write(.interruptEnable, 0x02)
        #expect(line.levels == [true])              // THR is empty: enabling the source raises the line
        #expect(read(.interruptId) == 0x02)
        #expect(line.levels == [true, false])       // reading IIR acknowledged it
        #expect(read(.interruptId) == 0x01)
        write(.interruptEnable, 0x02)               // re-writing the same enable is not a new event
        #expect(line.levels == [true, false])

        write(.data, 0x58)
        #expect(sent.bytes == [0x58])
        #expect(line.levels == [true, false, true]) // the byte left at once: THR empty again
        write(.data, 0x59)                          // not acknowledged, yet each byte gives an edge
        #expect(line.levels == [true, false, true, false, true])
        #expect(line.risingEdges == 3)

        write(.interruptEnable, 0x00)               // disabling the source lowers the line
        #expect(line.levels.last == false)
        #expect(read(.interruptId) == 0x01)
        write(.data, 0x5a)                          // no edges while the source is off
        #expect(line.levels.count == 6)
    }

    /// serial8250_do_startup's UART_BUG_THRE test: THRE must be re-asserted when IER.THRI is toggled.
    @Test func transmitEmptyIsReassertedWhenReenabled() {
        write(.interruptEnable, 0x02)
        let first = read(.interruptId)
        write(.interruptEnable, 0x00)
        write(.interruptEnable, 0x02)
        let second = read(.interruptId)
        write(.interruptEnable, 0x00)
        #expect(first & 0x01 == 0)
        #expect(second & 0x01 == 0)
        #expect(second & 0x0f == 0x02)
        #expect(line.risingEdges == 2)
        #expect(line.isRaised == false)
    }

    @Test func transmitWithoutInterruptEnableLeavesTheLineAlone() {
        write(.data, 0x41)
        write(.data, 0x42)
        #expect(line.levels.isEmpty)
        #expect(read(.interruptId) == 0x01)
    }

    // MARK: receive

    @Test func receivedBytesRaiseTheLineUntilRead() {
        write(.interruptEnable, 0x01)
        #expect(line.levels.isEmpty)
        #expect(uart.receive(Array("abc".utf8)) == 3)
        #expect(line.levels == [true])
        #expect(read(.lineStatus) & 0x01 == 0x01)
        #expect(read(.interruptId) == 0x04)
        #expect(uart.receiveSpace == 61)
        #expect(read(.data) == UInt8(ascii: "a"))
        #expect(read(.data) == UInt8(ascii: "b"))
        #expect(line.levels == [true])
        #expect(read(.data) == UInt8(ascii: "c"))
        #expect(line.levels == [true, false])
        #expect(read(.lineStatus) & 0x01 == 0)
        #expect(read(.interruptId) == 0x01)
        #expect(uart.receiveSpace == 64)
    }

    @Test func receiveWithoutInterruptEnableOnlySetsDataReady() {
        #expect(uart.receive([0x0d]) == 1)
        #expect(line.levels.isEmpty)
        #expect(read(.lineStatus) & 0x01 == 0x01)
        write(.interruptEnable, 0x01)               // enabling with data waiting raises it
        #expect(line.levels == [true])
    }

    @Test func receiveBeyondTheFIFOStopsAt64AndFlagsOverrun() {
        let input = (0..<70).map { UInt8($0) }
        #expect(uart.receive(input) == 64)
        #expect(uart.receiveSpace == 0)
        #expect(read(.lineStatus) == 0x63)          // DR | OE | THRE | TEMT
        #expect(read(.lineStatus) == 0x61)          // reading LSR cleared OE
        #expect(uart.receive([0xee]) == 0)          // still full
        var received: [UInt8] = []
        while read(.lineStatus) & 0x01 != 0 { received.append(read(.data)) }
        #expect(received == Array(input.prefix(64)))
        #expect(read(.data) == 0)                   // an empty FIFO reads as 0
    }

    @Test func receiveFIFOWrapsAround() {
        #expect(uart.receive((0..<60).map { UInt8($0) }) == 60)
        for expected in 0..<10 { #expect(read(.data) == UInt8(expected)) }
        #expect(uart.receiveSpace == 14)
        #expect(uart.receive((60..<80).map { UInt8($0) }) == 14)
        var received: [UInt8] = []
        while read(.lineStatus) & 0x01 != 0 { received.append(read(.data)) }
        #expect(received == (10..<74).map { UInt8($0) })
    }

    @Test func interruptIdentificationFollows16550Priority() {
        write(.interruptEnable, 0x0f)               // all four sources; THR empty is pending at once
        write(.modemControl, 0x18)                  // loopback: DSR and CTS fall, a modem status change
        for byte in 0..<65 { write(.data, UInt8(byte)) }  // fills the FIFO through loopback, one byte too many
        #expect(read(.interruptId) == 0x06)         // line status (overrun) first
        #expect(read(.interruptId) == 0x06)         // reading IIR does not clear it
        _ = read(.lineStatus)
        #expect(read(.interruptId) == 0x04)         // then received data
        for _ in 0..<64 { _ = read(.data) }
        #expect(read(.interruptId) == 0x02)         // then THR empty, which this read acknowledges
        #expect(read(.interruptId) == 0x00)         // then modem status
        _ = read(.modemStatus)
        #expect(read(.interruptId) == 0x01)
        #expect(line.levels == [true, false])       // one level throughout, dropped when nothing was left
    }

    @Test func lineStatusInterruptNeedsItsEnableBit() {
        write(.interruptEnable, 0x01)
        #expect(uart.receive((0..<65).map { UInt8($0) }) == 64)
        #expect(read(.interruptId) == 0x04)         // OE is set but IER bit 2 is off
        write(.interruptEnable, 0x05)
        #expect(read(.interruptId) == 0x06)
    }

    @Test func receivedDataHoldsTheLineAcrossTransmits() {
        write(.interruptEnable, 0x03)
        #expect(read(.interruptId) == 0x02)         // acknowledge THR empty
        #expect(uart.receive([0x31]) == 1)
        write(.data, 0x32)                          // THR write while RX data is pending: no new edge
        #expect(line.levels == [true, false, true])
        #expect(read(.interruptId) == 0x04)
    }

    // MARK: snapshots

    @Test func stateRoundTripsThroughSaveAndRestore() {
        write(.lineControl, 0x83)
        write(.data, 0x01)
        write(.lineControl, 0x03)
        write(.interruptId, 0x07)
        write(.modemControl, 0x0b)
        write(.scratch, 0x5a)
        write(.interruptEnable, 0x01)
        #expect(uart.receive([0x10, 0x20, 0x30]) == 3)
        _ = read(.data)
        let saved = uart.saveState()
        #expect(saved.receivedBytes == [0x20, 0x30])
        #expect(saved.interruptEnable == 0x01)
        #expect(saved.modemControl == 0x0b)

        let otherLine = RecordingInterruptLine()
        let copy = Serial8250(interrupt: otherLine, output: { _ in })
        copy.restoreState(saved)
        #expect(copy.saveState() == saved)
        #expect(otherLine.levels == [true])         // the restored copy has received data pending
        #expect(copy.read(port: Self.base + 7, size: 1) == 0x5a)
        #expect(copy.read(port: Self.base + 2, size: 1) == 0xc4)
        #expect(copy.read(port: Self.base, size: 1) == 0x20)
        #expect(copy.read(port: Self.base, size: 1) == 0x30)
        #expect(copy.saveState() != saved)

        write(.scratch, 0x00)
        uart.restoreState(saved)                    // restoring over a changed device brings it back
        #expect(uart.saveState() == saved)
        #expect(read(.scratch) == 0x5a)
    }

    @Test func restoringAQuietStateLowersARaisedLine() {
        write(.interruptEnable, 0x01)
        #expect(uart.receive([0x41]) == 1)
        #expect(line.levels == [true])
        uart.restoreState(Serial8250(interrupt: RecordingInterruptLine(), output: { _ in }).saveState())
        #expect(line.levels == [true, false])
        #expect(read(.lineStatus) == 0x60)
    }

    @Test func stateSurvivesJSON() throws {
        write(.interruptId, 0x01)
        write(.interruptEnable, 0x03)
        #expect(uart.receive([1, 2, 3]) == 3)
        let saved = uart.saveState()
        #expect(try StateCoding.roundTrip(saved) == saved)
    }

    @Test func decodingRefusesImpossibleStates() throws {
        let saved = uart.saveState()
        #expect(throws: DecodingError.self) {
            try StateCoding.decode(saved, replacing: "receivedBytes", with: [Int](repeating: 7, count: 65))
        }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "interruptEnable", with: 0x10) }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "modemControl", with: 0x20) }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "fifoControl", with: 0x02) }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "lineStatusErrors", with: 0x01) }
        let full = try StateCoding.decode(saved, replacing: "receivedBytes", with: [Int](repeating: 7, count: 64))
        #expect(full.receivedBytes.count == 64)
    }
}
