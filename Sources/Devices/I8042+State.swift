extension I8042 {
    /// Everything the keyboard controller holds, for snapshots: the command byte, the output port,
    /// the output buffer's contents, commands waiting for their data byte, and the keyboard's settings.
    ///
    /// Only `I8042.saveState()` and decoding make one, and decoding checks every field, so
    /// `restoreState(_:)` cannot be handed a state the controller could not have been in.
    package struct State: Codable, Sendable, Equatable {
        /// The controller command byte (CTR): interrupt enables, system flag, port disables, translation.
        package let commandByte: UInt8
        /// The controller output port (bit 0: CPU reset line released, bit 1: A20 enabled).
        package let outputPort: UInt8
        /// Whether the last write went to the command port (status bit 3).
        package let lastWriteWasCommand: Bool
        /// The controller command (0x60, 0xD1, 0xD2) whose data byte the next data-port write is; 0 if none.
        package let controllerAwaitingData: UInt8
        /// The keyboard command (0xED, 0xF0, 0xF3) whose argument the next keyboard byte is; 0 if none.
        package let keyboardAwaitingArgument: UInt8
        /// Whether the keyboard sends scancodes (0xF4 enables, 0xF5 disables).
        package let keyboardScanning: Bool
        /// The keyboard LEDs (bit 0 scroll, bit 1 num, bit 2 caps lock).
        package let keyboardLEDs: UInt8
        /// The typematic rate and delay byte (0xF3).
        package let typematic: UInt8
        /// The keyboard's scancode set (1–3).
        package let scancodeSet: UInt8
        /// The bytes waiting in the output buffer, oldest first.
        package let outputBytes: [UInt8]

        enum CodingKeys: String, CodingKey {
            case commandByte, outputPort, lastWriteWasCommand, controllerAwaitingData, keyboardAwaitingArgument
            case keyboardScanning, keyboardLEDs, typematic, scancodeSet, outputBytes
        }

        /// Why these field values are not a state the controller could be in, or nil when they are.
        var inconsistency: String? {
            if ![0, 0x60, 0xd1, 0xd2].contains(controllerAwaitingData) {
                return "no controller command 0x\(String(controllerAwaitingData, radix: 16)) takes a data byte"
            }
            if ![0, 0xed, 0xf0, 0xf3].contains(keyboardAwaitingArgument) {
                return "no keyboard command 0x\(String(keyboardAwaitingArgument, radix: 16)) takes an argument"
            }
            if keyboardLEDs & ~0x07 != 0 { return "keyboard LEDs 0x\(String(keyboardLEDs, radix: 16)) set bits above 2" }
            if typematic & ~0x7f != 0 { return "typematic byte 0x\(String(typematic, radix: 16)) sets bit 7" }
            if !(1...3).contains(scancodeSet) { return "scancode set \(scancodeSet) is not 1, 2 or 3" }
            if outputBytes.count > I8042.outputBufferCapacity {
                return "the output buffer holds \(outputBytes.count) bytes; it has room for \(I8042.outputBufferCapacity)"
            }
            return nil
        }
    }
}

extension I8042.State {
    /// Decodes a saved controller state and refuses values the controller could not have held.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            commandByte: try container.decode(UInt8.self, forKey: .commandByte),
            outputPort: try container.decode(UInt8.self, forKey: .outputPort),
            lastWriteWasCommand: try container.decode(Bool.self, forKey: .lastWriteWasCommand),
            controllerAwaitingData: try container.decode(UInt8.self, forKey: .controllerAwaitingData),
            keyboardAwaitingArgument: try container.decode(UInt8.self, forKey: .keyboardAwaitingArgument),
            keyboardScanning: try container.decode(Bool.self, forKey: .keyboardScanning),
            keyboardLEDs: try container.decode(UInt8.self, forKey: .keyboardLEDs),
            typematic: try container.decode(UInt8.self, forKey: .typematic),
            scancodeSet: try container.decode(UInt8.self, forKey: .scancodeSet),
            outputBytes: try container.decode([UInt8].self, forKey: .outputBytes))
        if let inconsistency {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "i8042 state: \(inconsistency)"))
        }
    }
}
