extension I8042 {
    /// The controller's and the keyboard's live state, kept under the device's lock.
    ///
    /// One output buffer carries controller replies and keyboard bytes alike; the controller has
    /// no auxiliary (mouse) port, like an AT-type 8042 (see `writeCommand`).
    struct RegisterFile {
        // Command byte (CTR) bits.
        static let keyboardInterruptEnable: UInt8 = 0x01
        static let systemFlag: UInt8 = 0x04
        static let keyboardDisable: UInt8 = 0x10
        static let auxDisable: UInt8 = 0x20
        static let translate: UInt8 = 0x40

        // Status register bits.
        static let outputBufferFull: UInt8 = 0x01
        static let commandWritten: UInt8 = 0x08
        static let keyboardNotInhibited: UInt8 = 0x10

        // Output port bits.
        static let resetLineReleased: UInt8 = 0x01

        // Controller commands that take a data byte on port 0x60.
        static let writeCommandByte: UInt8 = 0x60
        static let writeOutputPort: UInt8 = 0xd1
        static let writeKeyboardOutput: UInt8 = 0xd2

        // Keyboard commands that take an argument, and keyboard replies.
        static let setLEDs: UInt8 = 0xed
        static let scancodeSetCommand: UInt8 = 0xf0
        static let setTypematic: UInt8 = 0xf3
        static let acknowledge: UInt8 = 0xfa
        static let resend: UInt8 = 0xfe
        static let selfTestPassed: UInt8 = 0xaa
        static let defaultTypematic: UInt8 = 0x2b  // 10.9 characters per second, 500 ms delay

        // Power-on values as firmware leaves them: keyboard interrupt on, system flag, translation.
        var commandByte: UInt8 = 0x45
        var outputPort: UInt8 = 0x03
        var lastWriteWasCommand = false
        var controllerAwaitingData: UInt8 = 0
        var keyboardAwaitingArgument: UInt8 = 0
        var keyboardScanning = true
        var keyboardLEDs: UInt8 = 0
        var typematic = Self.defaultTypematic
        var scancodeSet: UInt8 = 2
        var output = ByteRing(capacity: I8042.outputBufferCapacity)
        /// The level last driven on IRQ 1: belongs to the wiring, not to the snapshot.
        var interruptLineRaised = false

        init() {}

        /// The status register: output buffer full, system flag (from the command byte), which port
        /// was written last, keyboard not inhibited. The input buffer is never full: writes act at once.
        var status: UInt8 {
            (output.isEmpty ? 0 : Self.outputBufferFull) | commandByte & Self.systemFlag
                | (lastWriteWasCommand ? Self.commandWritten : 0) | Self.keyboardNotInhibited
        }

        /// Whether the keyboard port is enabled and the keyboard scanning, so key presses reach the guest.
        var acceptsKeys: Bool { keyboardScanning && commandByte & Self.keyboardDisable == 0 }

        /// A read of the data port: the oldest byte in the output buffer (0 when it is empty).
        mutating func readData(line: any InterruptLine) -> UInt8 {
            let byte = output.removeFirst() ?? 0
            // IRQ 1 is edge-triggered and Linux's handler takes one byte per interrupt, as QEMU's
            // controller assumes: drop the line so a byte still queued raises a fresh edge.
            if interruptLineRaised {
                interruptLineRaised = false
                line.set(level: false)
            }
            return byte
        }

        /// A controller command on port 0x64; returns true when it pulses the CPU reset line.
        ///
        /// There is no auxiliary port: 0xA9 (aux test), 0xD3 and 0xD4 are ignored as on an AT-type
        /// controller, so the data byte after Linux's 0xD3 loop test reaches the keyboard, which
        /// answers 0xFE without the aux flag, and Linux gives up on the mouse at once instead of
        /// waiting for timeouts.
        mutating func writeCommand(_ command: UInt8) -> Bool {
            lastWriteWasCommand = true
            controllerAwaitingData = 0
            switch command {
            case 0x20: queue(commandByte)
            case Self.writeCommandByte, Self.writeOutputPort, Self.writeKeyboardOutput: controllerAwaitingData = command
            case 0xa7: commandByte |= Self.auxDisable
            case 0xa8: commandByte &= ~Self.auxDisable
            case 0xaa: queue(0x55)  // controller self-test passed
            case 0xab: queue(0x00)  // keyboard interface test: no error
            case 0xad: commandByte |= Self.keyboardDisable
            case 0xae: commandByte &= ~Self.keyboardDisable
            case 0xd0: queue(outputPort)
            case 0xf0...0xff:
                // Pulse output lines: a clear bit in the low nibble pulses that line; line 0 is CPU reset (0xFE).
                return command & Self.resetLineReleased == 0
            default: break
            }
            return false
        }

        /// A byte on port 0x60: the data byte of a controller command, or a byte for the keyboard.
        /// Returns true when it clears the output port's reset bit, resetting the CPU.
        mutating func writeData(_ byte: UInt8) -> Bool {
            lastWriteWasCommand = false
            let command = controllerAwaitingData
            controllerAwaitingData = 0
            switch command {
            case Self.writeCommandByte: commandByte = byte
            case Self.writeOutputPort:
                outputPort = byte
                return byte & Self.resetLineReleased == 0
            case Self.writeKeyboardOutput: queue(byte)
            default: writeKeyboard(byte)
            }
            return false
        }

        /// Scancodes from a key event source; returns how many fitted. None are taken while the guest
        /// has the keyboard disabled (port disabled with 0xAD, or scanning off with 0xF5).
        mutating func inject(_ codes: some Collection<UInt8>) -> Int {
            guard acceptsKeys else { return 0 }
            var accepted = 0
            for code in codes {
                guard output.append(code) else { break }
                accepted += 1
            }
            return accepted
        }

        /// Drives IRQ 1 to match the output buffer: raised while a byte waits, the keyboard
        /// interrupt is enabled and the keyboard port is not disabled. Calls the line only on a change.
        mutating func updateInterruptLine(_ line: any InterruptLine) {
            let raised = !output.isEmpty && commandByte & Self.keyboardInterruptEnable != 0
                && commandByte & Self.keyboardDisable == 0
            guard raised != interruptLineRaised else { return }
            interruptLineRaised = raised
            line.set(level: raised)
        }

        /// A byte the keyboard receives: an argument to its last command, or a new command.
        private mutating func writeKeyboard(_ byte: UInt8) {
            let command = keyboardAwaitingArgument
            keyboardAwaitingArgument = 0
            switch command {
            case Self.setLEDs:
                keyboardLEDs = byte & 0x07
                queue(Self.acknowledge)
            case Self.setTypematic:
                typematic = byte & 0x7f
                queue(Self.acknowledge)
            case Self.scancodeSetCommand:
                selectScancodeSet(byte)
            default:
                keyboardCommand(byte)
            }
        }

        private mutating func keyboardCommand(_ command: UInt8) {
            switch command {
            case Self.setLEDs, Self.scancodeSetCommand, Self.setTypematic:
                queue(Self.acknowledge)
                keyboardAwaitingArgument = command
            case 0xee: queue(0xee)  // echo
            case 0xf2:  // identify: an MF2 keyboard
                queue(Self.acknowledge)
                queue(0xab)
                queue(0x83)
            case 0xf4:  // enable scanning
                keyboardScanning = true
                queue(Self.acknowledge)
            case 0xf5:  // disable scanning and restore defaults
                keyboardScanning = false
                restoreKeyboardDefaults()
                queue(Self.acknowledge)
            case 0xf6:  // restore defaults
                restoreKeyboardDefaults()
                queue(Self.acknowledge)
            case 0xff:  // reset: acknowledge, then the self-test (BAT) result
                restoreKeyboardDefaults()
                keyboardLEDs = 0
                keyboardScanning = true
                queue(Self.acknowledge)
                queue(Self.selfTestPassed)
            default:
                queue(Self.resend)
            }
        }

        /// 0xF0's argument: 0 asks for the current set (translated for the guest when the controller
        /// translates, as QEMU's keyboard answers), 1–3 select one.
        private mutating func selectScancodeSet(_ argument: UInt8) {
            switch argument {
            case 0:
                queue(Self.acknowledge)
                guard commandByte & Self.translate != 0 else { return queue(scancodeSet) }
                switch scancodeSet {
                case 1: queue(0x43)
                case 2: queue(0x41)
                default: queue(0x3f)
                }
            case 1...3:
                scancodeSet = argument
                queue(Self.acknowledge)
            default:
                queue(Self.resend)
            }
        }

        private mutating func restoreKeyboardDefaults() {
            typematic = Self.defaultTypematic
            scancodeSet = 2
        }

        /// Puts a reply in the output buffer; a full buffer drops it, as the keyboard would fail to send.
        private mutating func queue(_ byte: UInt8) { _ = output.append(byte) }

        /// Loads a saved state; the interrupt line's level is kept, so the caller's next
        /// `updateInterruptLine` drives only a real difference.
        init(restoring state: State, lineRaised: Bool) {
            commandByte = state.commandByte
            outputPort = state.outputPort
            lastWriteWasCommand = state.lastWriteWasCommand
            controllerAwaitingData = state.controllerAwaitingData
            keyboardAwaitingArgument = state.keyboardAwaitingArgument
            keyboardScanning = state.keyboardScanning
            keyboardLEDs = state.keyboardLEDs
            typematic = state.typematic
            scancodeSet = state.scancodeSet
            output.replaceContents(with: state.outputBytes)
            interruptLineRaised = lineRaised
        }

        var state: State {
            State(commandByte: commandByte, outputPort: outputPort, lastWriteWasCommand: lastWriteWasCommand,
                  controllerAwaitingData: controllerAwaitingData, keyboardAwaitingArgument: keyboardAwaitingArgument,
                  keyboardScanning: keyboardScanning, keyboardLEDs: keyboardLEDs, typematic: typematic,
                  scancodeSet: scancodeSet, outputBytes: output.contents)
        }
    }
}
