/// A key press or release as RFB (and X11) name it: a keysym and whether it went down.
package struct KeyEvent: Sendable, Equatable, Codable {
    package var keysym: UInt32
    package var down: Bool

    package init(keysym: UInt32, down: Bool) {
        self.keysym = keysym
        self.down = down
    }
}

/// Turns keysyms into the PS/2 scancodes of a US keyboard, in set 1 (what a translating i8042
/// delivers) or set 2.
///
/// A keysym names a character, not a key, so a shifted character ("A", "!") maps to its key plus
/// a Shift press around it when the viewer did not hold Shift itself (RFB clients such as
/// vncdotool send "A" alone). `KeyboardTranslator` tracks the viewer's Shift for that.
package enum PS2Keymap {
    /// One physical key: its set-1 and set-2 make codes, and whether they take the 0xE0 prefix.
    struct Key {
        let set1: UInt8
        let set2: UInt8
        let extended: Bool
    }

    static let leftShift = Key(set1: 0x2a, set2: 0x12, extended: false)

    /// The key for `keysym` and whether the character needs Shift; nil for keys a PS/2 US keyboard lacks.
    static func key(for keysym: UInt32) -> (key: Key, shifted: Bool)? {
        if let key = special[keysym] { return (key, false) }
        guard keysym >= 0x20, keysym < 0x7f else { return nil }
        let ascii = UInt8(keysym)
        if let key = unshifted[ascii] { return (key, false) }
        if ascii >= UInt8(ascii: "A"), ascii <= UInt8(ascii: "Z"), let key = unshifted[ascii + 0x20] { return (key, true) }
        if let base = shiftedBase[ascii], let key = unshifted[base] { return (key, true) }
        return nil
    }

    /// The bytes one key sends when pressed or released in `set` (1 or 2; anything else is treated as 2).
    static func codes(_ key: Key, down: Bool, set: UInt8) -> [UInt8] {
        let prefix: [UInt8] = key.extended ? [0xe0] : []
        if set == 1 { return prefix + [down ? key.set1 : key.set1 | 0x80] }
        return prefix + (down ? [key.set2] : [0xf0, key.set2])
    }

    /// The scancodes for a keysym's press or release, without Shift handling; nil for an unknown keysym.
    package static func scancodes(keysym: UInt32, down: Bool, set: UInt8) -> [UInt8]? {
        guard let (key, _) = key(for: keysym) else { return nil }
        return codes(key, down: down, set: set)
    }

    private static func k(_ set1: UInt8, _ set2: UInt8, extended: Bool = false) -> Key { Key(set1: set1, set2: set2, extended: extended) }

    /// Printable ASCII on an unshifted US key.
    private static let unshifted: [UInt8: Key] = {
        var table: [UInt8: Key] = [:]
        func row(_ characters: String, set1 first: UInt8, set2: [UInt8]) {
            for (index, character) in characters.utf8.enumerated() { table[character] = k(first + UInt8(index), set2[index]) }
        }
        row("1234567890-=", set1: 0x02, set2: [0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55])
        row("qwertyuiop[]", set1: 0x10, set2: [0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b])
        row("asdfghjkl;'`", set1: 0x1e, set2: [0x1c, 0x1b, 0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52, 0x0e])
        row("zxcvbnm,./", set1: 0x2c, set2: [0x1a, 0x22, 0x21, 0x2a, 0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a])
        table[UInt8(ascii: "\\")] = k(0x2b, 0x5d)
        table[UInt8(ascii: " ")] = k(0x39, 0x29)
        return table
    }()

    /// Shifted punctuation and the unshifted character on the same key.
    private static let shiftedBase: [UInt8: UInt8] = {
        let pairs = Array("~!@#$%^&*()_+{}|:\"<>?".utf8)
        let bases = Array("`1234567890-=[]\\;',./".utf8)
        return Dictionary(uniqueKeysWithValues: zip(pairs, bases))
    }()

    /// Keysyms of keys that are not characters (X11 keysymdef.h values).
    private static let special: [UInt32: Key] = {
        var table: [UInt32: Key] = [
            0xff08: k(0x0e, 0x66),  // BackSpace
            0xff09: k(0x0f, 0x0d),  // Tab
            0xff0d: k(0x1c, 0x5a),  // Return
            0xff1b: k(0x01, 0x76),  // Escape
            0xffe1: leftShift,  // Shift_L
            0xffe2: k(0x36, 0x59),  // Shift_R
            0xffe3: k(0x1d, 0x14),  // Control_L
            0xffe4: k(0x1d, 0x14, extended: true),  // Control_R
            0xffe5: k(0x3a, 0x58),  // Caps_Lock
            0xffe9: k(0x38, 0x11),  // Alt_L
            0xffea: k(0x38, 0x11, extended: true),  // Alt_R
            0xff8d: k(0x1c, 0x5a, extended: true),  // KP_Enter
            0xff50: k(0x47, 0x6c, extended: true),  // Home
            0xff51: k(0x4b, 0x6b, extended: true),  // Left
            0xff52: k(0x48, 0x75, extended: true),  // Up
            0xff53: k(0x4d, 0x74, extended: true),  // Right
            0xff54: k(0x50, 0x72, extended: true),  // Down
            0xff55: k(0x49, 0x7d, extended: true),  // Page_Up
            0xff56: k(0x51, 0x7a, extended: true),  // Page_Down
            0xff57: k(0x4f, 0x69, extended: true),  // End
            0xff63: k(0x52, 0x70, extended: true),  // Insert
            0xffff: k(0x53, 0x71, extended: true),  // Delete
        ]
        let functionKeys: [UInt8] = [0x05, 0x06, 0x04, 0x0c, 0x03, 0x0b, 0x83, 0x0a, 0x01, 0x09]
        for (index, set2) in functionKeys.enumerated() { table[0xffbe + UInt32(index)] = k(0x3b + UInt8(index), set2) }
        return table
    }()
}

/// Keysym events to scancodes for one keyboard, adding Shift around shifted characters the
/// viewer typed without holding Shift.
package struct KeyboardTranslator: Sendable {
    private var shiftHeld: Set<UInt32> = []

    package init() {}

    /// The scancodes of `event` in `set`; nil for a keysym the keyboard has no key for.
    package mutating func scancodes(for event: KeyEvent, set: UInt8) -> [UInt8]? {
        guard let (key, shifted) = PS2Keymap.key(for: event.keysym) else { return nil }
        if event.keysym == 0xffe1 || event.keysym == 0xffe2 {
            if event.down { shiftHeld.insert(event.keysym) } else { shiftHeld.remove(event.keysym) }
        }
        let codes = PS2Keymap.codes(key, down: event.down, set: set)
        guard shifted, shiftHeld.isEmpty, event.down else { return codes }
        // A press of a shifted character: Shift down, the key, Shift up; its release needs nothing extra.
        return PS2Keymap.codes(PS2Keymap.leftShift, down: true, set: set) + codes + PS2Keymap.codes(PS2Keymap.leftShift, down: false, set: set)
    }
}
