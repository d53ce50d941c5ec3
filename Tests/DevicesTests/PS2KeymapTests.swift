import Devices
import Testing

/// Keysyms to PS/2 scancodes: set 1 as a translating i8042 delivers them, set 2 raw, and Shift
/// added around shifted characters the viewer typed without it.
@Suite struct PS2KeymapTests {
    @Test func lettersDigitsAndEnterInSet1() {
        #expect(PS2Keymap.scancodes(keysym: 0x61, down: true, set: 1) == [0x1e])      // a
        #expect(PS2Keymap.scancodes(keysym: 0x61, down: false, set: 1) == [0x9e])
        #expect(PS2Keymap.scancodes(keysym: 0x7a, down: true, set: 1) == [0x2c])      // z
        #expect(PS2Keymap.scancodes(keysym: 0x31, down: true, set: 1) == [0x02])      // 1
        #expect(PS2Keymap.scancodes(keysym: 0x30, down: true, set: 1) == [0x0b])      // 0
        #expect(PS2Keymap.scancodes(keysym: 0x20, down: true, set: 1) == [0x39])      // space
        #expect(PS2Keymap.scancodes(keysym: 0xff0d, down: true, set: 1) == [0x1c])    // Return
        #expect(PS2Keymap.scancodes(keysym: 0xff08, down: true, set: 1) == [0x0e])    // BackSpace
        #expect(PS2Keymap.scancodes(keysym: 0xffbe, down: true, set: 1) == [0x3b])    // F1
    }

    @Test func extendedKeysTakeThePrefix() {
        #expect(PS2Keymap.scancodes(keysym: 0xff52, down: true, set: 1) == [0xe0, 0x48])   // Up
        #expect(PS2Keymap.scancodes(keysym: 0xff52, down: false, set: 1) == [0xe0, 0xc8])
        #expect(PS2Keymap.scancodes(keysym: 0xff8d, down: true, set: 2) == [0xe0, 0x5a])   // KP_Enter
        #expect(PS2Keymap.scancodes(keysym: 0xff8d, down: false, set: 2) == [0xe0, 0xf0, 0x5a])
    }

    @Test func set2BreakCodesUseF0() {
        #expect(PS2Keymap.scancodes(keysym: 0x61, down: true, set: 2) == [0x1c])
        #expect(PS2Keymap.scancodes(keysym: 0x61, down: false, set: 2) == [0xf0, 0x1c])
        #expect(PS2Keymap.scancodes(keysym: 0xff0d, down: true, set: 2) == [0x5a])
    }

    @Test func unknownKeysymsHaveNoScancodes() {
        #expect(PS2Keymap.scancodes(keysym: 0x20ac, down: true, set: 1) == nil)   // EuroSign
        #expect(PS2Keymap.scancodes(keysym: 0x7f, down: true, set: 1) == nil)
    }

    @Test func shiftedCharactersGetShiftWhenTheViewerDidNotHoldIt() {
        var translator = KeyboardTranslator()
        #expect(translator.scancodes(for: KeyEvent(keysym: 0x41, down: true), set: 1) == [0x2a, 0x1e, 0xaa])   // A
        #expect(translator.scancodes(for: KeyEvent(keysym: 0x41, down: false), set: 1) == [0x9e])
        #expect(translator.scancodes(for: KeyEvent(keysym: 0x21, down: true), set: 1) == [0x2a, 0x02, 0xaa])   // !
        #expect(translator.scancodes(for: KeyEvent(keysym: 0x7c, down: true), set: 1) == [0x2a, 0x2b, 0xaa])   // |
    }

    @Test func aHeldShiftIsNotRepeated() {
        var translator = KeyboardTranslator()
        #expect(translator.scancodes(for: KeyEvent(keysym: 0xffe1, down: true), set: 1) == [0x2a])
        #expect(translator.scancodes(for: KeyEvent(keysym: 0x41, down: true), set: 1) == [0x1e])
        #expect(translator.scancodes(for: KeyEvent(keysym: 0xffe1, down: false), set: 1) == [0xaa])
        #expect(translator.scancodes(for: KeyEvent(keysym: 0x41, down: true), set: 1) == [0x2a, 0x1e, 0xaa])
    }
}
