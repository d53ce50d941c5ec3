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

    @Test func divisorLatchIsReachedOnlyWithDLAB() {
        write(.interruptEnable, 0x05)
        write(.lineControl, 0x83)                   // DLAB | 8N1
        #expect(read(.data) == 0x0c)                // 9600 baud at reset
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
        write(.lineControl, 0x80)
        #expect(read(.data) == 0x01)
        #expect(read(.interruptEnable) == 0x02)
    }

    @Test func fifoIsDetectedThroughIIR() {
        #expect(read(.interruptId) == 0x01)         // no FIFO, no interrupt pending
        write(.interruptId, 0x07)                   // FCR: enable, clear RX and TX
        #expect(read(.interruptId) & 0xc0 == 0xc0)  // 16550A
        #expect(read(.interruptId) & 0x0f == 0x01)
        write(.interruptId, 0x00)
        #expect(read(.interruptId) & 0xc0 == 0)
    }

    @Test func fifoResetDropsReceivedBytes() {
        write(.interruptId, 0x01)
        #expect(uart.receive([1, 2, 3]) == 3)
        write(.interruptId, 0x03)                   // enable + clear RX
        #expect(read(.lineStatus) & 0x01 == 0)
        #expect(uart.receiveSpace == 64)
    }

    // MARK: transmit

    @Test func transmittedBytesGoToTheOutputSink() {
        for byte in "hi\n".utf8 { write(.data, byte) }
        #expect(sent.bytes == Array("hi\n".utf8))
        #expect(read(.lineStatus) == 0x60)          // THRE | TEMT: sending is instantaneous
        #expect(read(.lineStatus) & 0x01 == 0)      // and nothing came back
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
        let status = read(.lineStatus)
        #expect(status & 0x03 == 0x03)              // DR | OE
        #expect(read(.lineStatus) & 0x02 == 0)      // reading LSR cleared OE
        #expect(read(.lineStatus) & 0x01 == 0x01)
        #expect(uart.receive([0xee]) == 0)          // still full
        var received: [UInt8] = []
        while read(.lineStatus) & 0x01 != 0 { received.append(read(.data)) }
        #expect(received == Array(input.prefix(64)))
        #expect(uart.receive([0xee]) == 1)          // room again, and the FIFO wrapped around
        #expect(read(.data) == 0xee)
    }

    @Test func interruptIdentificationFollows16550Priority() {
        write(.interruptEnable, 0x07)               // line status, RX data, THR empty
        #expect(uart.receive((0..<65).map { UInt8($0) }) == 64)
        #expect(read(.interruptId) == 0x06)         // line status (overrun) first
        #expect(read(.interruptId) == 0x06)         // reading IIR does not clear it
        _ = read(.lineStatus)
        #expect(read(.interruptId) == 0x04)         // then received data
        for _ in 0..<64 { _ = read(.data) }
        #expect(read(.interruptId) == 0x02)         // then THR empty, which this read acknowledges
        #expect(read(.interruptId) == 0x01)
        #expect(line.levels == [true, false])       // one level throughout, dropped when nothing was left
    }

    @Test func lineStatusInterruptNeedsItsEnableBit() {
        write(.interruptEnable, 0x01)
        #expect(uart.receive((0..<65).map { UInt8($0) }) == 64)
        #expect(read(.interruptId) == 0x04)         // OE is set but IER bit 2 is off
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
}
