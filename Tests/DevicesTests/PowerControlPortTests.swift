import Devices
import Testing

/// The PM1a-style power-off register: only SLP_EN with sleep type 0 (soft off in Engram's model) powers off.
@Suite struct PowerControlPortTests {
    private static let port: UInt16 = 0x604

    private let powerOffs = CallCounter()
    private let device: PowerControlPort

    init() {
        let powerOffs = powerOffs
        device = PowerControlPort(onPowerOff: { powerOffs.record() })
    }

    @Test func sleepEnableWithTypeZeroPowersOff() {
        device.write(port: Self.port, size: 2, value: 0x2000)
        #expect(powerOffs.calls == 1)
        device.write(port: Self.port, size: 2, value: 0x2001)  // SCI_EN alongside does not matter
        #expect(powerOffs.calls == 2)
    }

    @Test func otherValuesDoNot() {
        for value: UInt32 in [0x0000, 0x3400, 0x2400, 0x3c00, 0x1c00, 0x0001, 0x1fff, 0xdfff] {
            device.write(port: Self.port, size: 2, value: value)
        }
        #expect(powerOffs.calls == 0)
    }

    @Test func readsBackWithoutSleepEnable() {
        #expect(device.read(port: Self.port, size: 2) == 0)
        device.write(port: Self.port, size: 2, value: 0x3401)
        #expect(device.read(port: Self.port, size: 2) == 0x1401)  // SLP_EN is write-only
        #expect(device.read(port: Self.port, size: 1) == 0x01)
        #expect(device.read(port: Self.port + 1, size: 1) == 0x14)
        #expect(powerOffs.calls == 0)
    }

    @Test func byteWritesMergeIntoTheRegister() {
        device.write(port: Self.port, size: 1, value: 0x01)        // low byte: SCI_EN
        #expect(device.read(port: Self.port, size: 2) == 0x0001)
        device.write(port: Self.port + 1, size: 1, value: 0x14)    // high byte: SLP_TYP 5, no SLP_EN
        #expect(device.read(port: Self.port, size: 2) == 0x1401)
        #expect(powerOffs.calls == 0)
        device.write(port: Self.port + 1, size: 1, value: 0x20)    // high byte: SLP_EN, SLP_TYP 0
        #expect(powerOffs.calls == 1)
        #expect(device.read(port: Self.port, size: 2) == 0x0001)   // the low byte was kept
    }

    @Test func stateRoundTrips() {
        device.write(port: Self.port, size: 2, value: 0x1401)
        let saved = device.saveState()
        #expect(saved.control == 0x1401)
        let copy = PowerControlPort(onPowerOff: {})
        copy.restoreState(saved)
        #expect(copy.read(port: Self.port, size: 2) == 0x1401)
        #expect(copy.saveState() == saved)
        #expect(powerOffs.calls == 0)
    }
}
