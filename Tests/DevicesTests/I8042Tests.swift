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
        #expect(status == 0x14)                     // system flag, not inhibited, buffer empty
        sendCommand(0xaa)
        #expect(status == 0x1d)                     // + output full, last write was a command
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
        sendCommand(0xa7)                           // disable aux sets bit 5
        sendCommand(0x20)
        #expect(drainOutput() == [0x67])
        sendCommand(0xa8)
        sendCommand(0x20)
        #expect(drainOutput() == [0x47])
    }

    @Test func systemFlagFollowsTheCommandByte() {
        sendCommand(0x60)
        sendData(0x41)
        #expect(status & 0x04 == 0)
        sendCommand(0x60)
        sendData(0x45)
        #expect(status & 0x04 == 0x04)
    }

    @Test func pulseResetCallsOnReset() {
        sendCommand(0xaa)
        sendCommand(0x20)
        sendCommand(0xff)                           // pulses no line
        #expect(resets.calls == 0)
        sendCommand(0xfe)                           // pulses line 0, CPU reset
        #expect(resets.calls == 1)
        sendCommand(0xf0)                           // pulses all four, reset among them
        #expect(resets.calls == 2)
        sendCommand(0xfd)                           // line 1 only
        #expect(resets.calls == 2)
    }

    /// The reset callback runs outside the device's lock: it may read the controller again.
    @Test func resetCallbackMayCallBackIntoTheDevice() {
        let slot = DeviceSlot<I8042>()
        let seen = ByteRecorder()
        let controller = I8042(interrupt: RecordingInterruptLine(), onReset: {
            if let controller = slot.device { seen.append(UInt8(controller.read(port: Self.command, size: 1))) }
        })
        slot.device = controller
        controller.write(port: Self.command, size: 1, value: 0xfe)
        #expect(seen.bytes == [0x1c])
    }

    @Test func outputPortReadsAndResetsTheCPU() {
        sendCommand(0xd0)
        #expect(drainOutput() == [0x03])            // reset line released, A20 on
        sendCommand(0xd1)
        sendData(0x01)                              // A20 off, reset line stays high
        #expect(resets.calls == 0)
        sendCommand(0xd0)
        #expect(drainOutput() == [0x01])
        sendCommand(0xd1)
        sendData(0x02)                              // bit 0 cleared: the CPU is reset
        #expect(resets.calls == 1)
        #expect(drainOutput().isEmpty)
    }

    @Test func writeKeyboardOutputBufferQueuesTheByte() {
        sendCommand(0xd2)
        sendData(0x1c)
        #expect(drainOutput() == [0x1c])
        #expect(line.risingEdges == 1)
    }

    /// Linux's AUX loop test (0xD3) gets the keyboard's resend without the aux flag, so the driver
    /// concludes at once that there is no mouse port.
    @Test func auxLoopTestFindsNoAuxPort() {
        sendCommand(0xd3)
        sendData(0x5a)
        #expect(status & 0x21 == 0x01)              // a byte waits, but not from the aux port
        #expect(readData() == 0xfe)
        sendCommand(0xa9)                           // aux interface test: no answer
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
        #expect(controller.saveState().keyboardLEDs == 0x02)
        sendData(0xf2)                              // the argument was consumed: a command again
        #expect(drainOutput() == [0xfa, 0xab, 0x83])
        sendData(0xf3)                              // typematic rate …
        sendData(0x20)                              // … and its argument
        #expect(drainOutput() == [0xfa, 0xfa])
        #expect(controller.saveState().typematic == 0x20)
        sendData(0xf5)                              // disable scanning, defaults back
        sendData(0xf4)                              // enable scanning
        sendData(0xf6)                              // defaults
        #expect(drainOutput() == [0xfa, 0xfa, 0xfa])
        #expect(controller.saveState().typematic == 0x2b)
        sendData(0xee)                              // echo
        #expect(drainOutput() == [0xee])
        sendData(0x42)                              // no such command
        #expect(drainOutput() == [0xfe])
        #expect(resets.calls == 0)
    }

    @Test func scancodeSetCommand() {
        sendData(0xf0)
        sendData(0x00)                              // which set? 2, translated to 0x41 for the guest
        #expect(drainOutput() == [0xfa, 0xfa, 0x41])
        sendData(0xf0)
        sendData(0x01)
        sendData(0xf0)
        sendData(0x00)
        #expect(drainOutput() == [0xfa, 0xfa, 0xfa, 0xfa, 0x43])
        sendCommand(0x60)
        sendData(0x05)                              // translation off
        sendData(0xf0)
        sendData(0x00)
        #expect(drainOutput() == [0xfa, 0xfa, 0x01])
        sendData(0xf0)
        sendData(0x07)                              // no set 7
        #expect(drainOutput() == [0xfa, 0xfe])
    }

    /// A controller command between a keyboard command and its argument leaves the argument to the keyboard.
    @Test func controllerCommandDoesNotStealAKeyboardArgument() {
        sendData(0xed)
        #expect(drainOutput() == [0xfa])
        sendCommand(0x20)
        #expect(drainOutput() == [0x45])
        sendData(0x04)                              // caps lock
        #expect(drainOutput() == [0xfa])
        #expect(controller.saveState().keyboardLEDs == 0x04)
    }

    // MARK: scancodes and IRQ 1

    @Test func scancodesRaiseIRQ1() {
        #expect(controller.injectScancodes([0x1e, 0x9e]) == 2)  // 'a' pressed and released
        #expect(line.levels == [true])
        #expect(status & Self.outputFull == Self.outputFull)
        #expect(readData() == 0x1e)
        #expect(readData() == 0x9e)
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

    @Test func disabledKeyboardTakesNoKeys() {
        sendCommand(0xad)                           // keyboard port disabled
        #expect(controller.injectScancodes([0x1c]) == 0)
        #expect(status & Self.outputFull == 0)
        sendCommand(0xae)
        sendData(0xf5)                              // scanning off
        #expect(drainOutput() == [0xfa])
        #expect(controller.injectScancodes([0x1c]) == 0)
        sendData(0xf4)
        #expect(drainOutput() == [0xfa])
        #expect(controller.injectScancodes([0x1c]) == 1)
        #expect(readData() == 0x1c)
    }

    @Test func aKeystrokeIsQueuedWholeOrNotAtAll() {
        #expect(controller.injectScancodes(Array(repeating: 0x1e, count: 14)) == 14)
        #expect(!controller.injectKeystroke([0x2a, 0x1e, 0xaa]))    // 2 free: the key is not split
        #expect(controller.injectKeystroke([0xe0, 0x48]))
        #expect(drainOutput() == Array(repeating: 0x1e, count: 14) + [0xe0, 0x48])
        sendCommand(0xad)
        #expect(!controller.injectKeystroke([0x1e]))
    }

    @Test func theGuestSeesSet1WhileTheControllerTranslates() {
        #expect(controller.scancodeSetSeen == 1)
        sendCommand(0x60)
        sendData(0x05)                              // interrupts on, translation off
        #expect(controller.scancodeSetSeen == 2)
    }

    @Test func disablingTheKeyboardPortHoldsIRQ1Low() {
        sendCommand(0x20)                           // a reply waits …
        #expect(line.levels == [true])
        sendCommand(0xad)                           // … but the keyboard port is now off
        #expect(line.levels == [true, false])
        sendCommand(0xae)
        #expect(line.levels == [true, false, true])
        #expect(drainOutput() == [0x45])
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
        #expect(saved.outputBytes == [0x9c, 0xfa])
        #expect(saved.keyboardAwaitingArgument == 0xed)
        #expect(saved.commandByte == 0x47)

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

    @Test func restoringAnEmptyBufferLowersIRQ1() {
        controller.injectScancodes([0x1c])
        #expect(line.levels == [true])
        controller.restoreState(I8042(interrupt: RecordingInterruptLine(), onReset: {}).saveState())
        #expect(line.levels == [true, false])
        #expect(status == 0x14)
    }

    @Test func stateSurvivesJSON() throws {
        controller.injectScancodes([0x1c, 0x9c])
        sendCommand(0x60)                           // a controller command waiting for its data byte
        let saved = controller.saveState()
        #expect(saved.controllerAwaitingData == 0x60)
        #expect(try StateCoding.roundTrip(saved) == saved)
    }

    @Test func decodingRefusesImpossibleStates() throws {
        let saved = controller.saveState()
        #expect(throws: DecodingError.self) {
            try StateCoding.decode(saved, replacing: "outputBytes", with: [Int](repeating: 0x1c, count: 17))
        }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "controllerAwaitingData", with: 0x20) }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "keyboardAwaitingArgument", with: 0xff) }
        #expect(throws: DecodingError.self) { try StateCoding.decode(saved, replacing: "scancodeSet", with: 4) }
        let full = try StateCoding.decode(saved, replacing: "outputBytes", with: [Int](repeating: 0x1c, count: 16))
        #expect(full.outputBytes.count == 16)
    }
}
