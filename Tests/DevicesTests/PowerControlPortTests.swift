import Devices
import Testing

/// The PM1a-style power-off register: only SLP_EN with sleep type 0 (S5 in Engram's model) powers off.
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
    }

    @Test func otherValuesDoNot() {
        for value: UInt32 in [0x0000, 0x3400, 0x2400, 0x3c00, 0x1c00, 0x0001, 0x1fff] {
            device.write(port: Self.port, size: 2, value: value)
        }
        #expect(powerOffs.calls == 0)
    }

    @Test func readsBackWithoutSleepEnable() {
        #expect(device.read(port: Self.port, size: 2) == 0)
        device.write(port: Self.port, size: 2, value: 0x3401)
        #expect(device.read(port: Self.port, size: 2) == 0x1401)  // SLP_EN is write-only
        #expect(powerOffs.calls == 0)
    }
}
