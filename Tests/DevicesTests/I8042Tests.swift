import Devices
import Testing

/// The keyboard controller driven through ports 0x60 and 0x64, as Linux's i8042 and atkbd drivers do.
@Suite struct I8042Tests {
    private static let data: UInt16 = 0x60
    private static let command: UInt16 = 0x64
    private static let outputFull: UInt8 = 0x01

    private let line = RecordingInterruptLine()
    private let resets = CallCounter()
    private let controller: I8042

    init() {
        let resets = resets
        controller = I8042(interrupt: line, onReset: { resets.record() })
    }

    private var status: UInt8 { UInt8(controller.read(port: Self.command, size: 1)) }

    private func readData() -> UInt8 { UInt8(controller.read(port: Self.data, size: 1)) }

    private func sendCommand(_ byte: UInt8) { controller.write(port: Self.command, size: 1, value: UInt32(byte)) }

    private func sendData(_ byte: UInt8) { controller.write(port: Self.data, size: 1, value: UInt32(byte)) }

    /// Reads the data port while the status says it holds a byte.
    private func drainOutput() -> [UInt8] {
        var bytes: [UInt8] = []
        while status & Self.outputFull != 0 && bytes.count < 100 { bytes.append(readData()) }
        return bytes
    }

    // MARK: controller commands (port 0x64)

    @Test func selfTestAnswers0x55() {
        #expect(status & Self.outputFull == 0)
        sendCommand(0xaa)
        #expect(status & Self.outputFull == Self.outputFull)
        #expect(status & 0x08 == 0x08)              // the last write was a command
        #expect(readData() == 0x55)
        #expect(status & Self.outputFull == 0)
        sendCommand(0xab)                           // keyboard interface test
        #expect(drainOutput() == [0x00])
    }

    @Test func commandByteReadsAndWrites() {
        sendCommand(0x20)
        #expect(drainOutput() == [0x45])            // IRQ1 on, system flag, translation
        sendCommand(0x60)
        sendData(0x47)
        #expect(status & 0x08 == 0)                 // the last write was data
        #expect(drainOutput().isEmpty)              // the byte was the command's argument, not a keyboard command
        sendCommand(0x20)
        #expect(drainOutput() == [0x47])
        sendCommand(0xad)                           // disable keyboard sets bit 4
        sendCommand(0x20)
        #expect(drainOutput() == [0x57])
        sendCommand(0xae)
        sendCommand(0x20)
        #expect(drainOutput() == [0x47])
    }

    @Test func pulseResetCallsOnResetOnce() {
        sendCommand(0xaa)
        sendCommand(0x20)
        #expect(resets.calls == 0)
        sendCommand(0xfe)
        #expect(resets.calls == 1)
    }

    @Test func outputPortResetLine() {
        sendCommand(0xd1)
        sendData(0x03)                              // reset line stays high
        #expect(resets.calls == 0)
        sendCommand(0xd1)
        sendData(0x02)                              // bit 0 cleared: the CPU is reset
        #expect(resets.calls == 1)
        #expect(drainOutput().isEmpty)
    }

    // MARK: keyboard commands (port 0x60)

    @Test func keyboardCommandsAreAnswered() {
        sendData(0xff)                              // reset
        #expect(drainOutput() == [0xfa, 0xaa])
        sendData(0xf2)                              // identify: MF2 keyboard
        #expect(drainOutput() == [0xfa, 0xab, 0x83])
        sendData(0xed)                              // set LEDs …
        #expect(drainOutput() == [0xfa])
        sendData(0x02)                              // … to num lock: an argument, acknowledged
        #expect(drainOutput() == [0xfa])
        sendData(0xf2)                              // the argument was consumed: a command again
        #expect(drainOutput() == [0xfa, 0xab, 0x83])
        sendData(0xf4)                              // enable scanning
        #expect(drainOutput() == [0xfa])
        sendData(0xee)                              // echo
        #expect(drainOutput() == [0xee])
        sendData(0x42)                              // no such command
        #expect(drainOutput() == [0xfe])
        #expect(resets.calls == 0)
    }

    // MARK: scancodes and IRQ 1

    @Test func scancodesRaiseIRQ1() {
        #expect(controller.injectScancodes([0x1c, 0x9c]) == 2)  // 'a' pressed and released
        #expect(line.levels == [true])
        #expect(readData() == 0x1c)
        #expect(readData() == 0x9c)
        #expect(line.levels.last == false)
        #expect(status & Self.outputFull == 0)
    }

    /// Linux's i8042_interrupt reads one byte per interrupt and IRQ 1 is edge-triggered,
    /// so every byte left in the buffer after a read needs a fresh rising edge.
    @Test func eachQueuedByteGetsItsOwnEdge() {
        #expect(controller.injectScancodes([0x1c, 0x9c, 0x1e]) == 3)
        #expect(readData() == 0x1c)
        #expect(readData() == 0x9c)
        #expect(readData() == 0x1e)
        #expect(line.levels == [true, false, true, false, true, false])
        #expect(line.risingEdges == 3)
    }

    @Test func multiByteReplyGetsAnEdgePerByte() {
        sendData(0xff)
        #expect(readData() == 0xfa)
        #expect(readData() == 0xaa)
        #expect(line.risingEdges == 2)
        #expect(line.isRaised == false)
    }

    @Test func noIRQWhenTheKeyboardIsDisabled() {
        sendCommand(0xad)
        #expect(controller.injectScancodes([0x1c]) == 1)
        #expect(line.levels.isEmpty)
        #expect(status & Self.outputFull == Self.outputFull)  // queued, but silent
        sendCommand(0xae)                           // enabling with a byte waiting raises the line
        #expect(line.levels == [true])
        #expect(readData() == 0x1c)
        #expect(line.levels == [true, false])
    }

    @Test func noIRQWhenCommandByteBit0IsClear() {
        sendCommand(0x60)
        sendData(0x44)
        #expect(controller.injectScancodes([0x1c]) == 1)
        #expect(line.levels.isEmpty)
        sendCommand(0x60)
        sendData(0x45)                              // interrupts on with a byte waiting
        #expect(line.levels == [true])
    }

    @Test func outputBufferHolds16Bytes() {
        #expect(controller.injectScancodes((1...20).map { UInt8($0) }) == 16)
        #expect(drainOutput() == (1...16).map { UInt8($0) })
        #expect(controller.injectScancodes([0x21]) == 1)
        #expect(drainOutput() == [0x21])
    }

    // MARK: snapshots

    @Test func stateRoundTripsThroughSaveAndRestore() {
        sendCommand(0x60)
        sendData(0x47)
        controller.injectScancodes([0x1c, 0x9c])
        _ = readData()
        sendData(0xed)                              // leaves an LED argument pending
        let saved = controller.saveState()

        let otherLine = RecordingInterruptLine()
        let copy = I8042(interrupt: otherLine, onReset: {})
        copy.restoreState(saved)
        #expect(copy.saveState() == saved)
        #expect(otherLine.levels == [true])         // bytes waiting, IRQ enabled
        #expect(UInt8(copy.read(port: Self.data, size: 1)) == 0x9c)
        #expect(UInt8(copy.read(port: Self.data, size: 1)) == 0xfa)
        copy.write(port: Self.data, size: 1, value: 0x00)  // the pending LED argument survived
        #expect(UInt8(copy.read(port: Self.data, size: 1)) == 0xfa)
        copy.write(port: Self.command, size: 1, value: 0x20)
        #expect(UInt8(copy.read(port: Self.data, size: 1)) == 0x47)
        #expect(copy.saveState() != saved)
    }
}
