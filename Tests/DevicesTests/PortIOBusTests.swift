import Devices
import Synchronization
import Testing

/// Dispatch by port range, conflicts, and what unclaimed ports answer.
@Suite struct PortIOBusTests {
    /// A device that answers reads with a fixed value and records every access.
    private final class RecordingDevice: PortIODevice {
        struct Access: Equatable { var isWrite: Bool; var port: UInt16; var size: Int; var value: UInt32 }

        private let answer: UInt32
        private let recorded = Mutex<[Access]>([])

        init(answer: UInt32) { self.answer = answer }

        var accesses: [Access] { recorded.withLock { $0 } }

        func read(port: UInt16, size: Int) -> UInt32 {
            recorded.withLock { $0.append(Access(isWrite: false, port: port, size: size, value: answer)) }
            return answer
        }

        func write(port: UInt16, size: Int, value: UInt32) {
            recorded.withLock { $0.append(Access(isWrite: true, port: port, size: size, value: value)) }
        }
    }

    @Test func overlappingClaimsAreRefused() throws {
        let builder = PortIOBus.Builder()
        try builder.register(RecordingDevice(answer: 0), ports: 0x3f8...0x3ff)
        #expect(throws: DeviceError.portConflict(ports: 0x3fc...0x403, existing: 0x3f8...0x3ff)) {
            try builder.register(RecordingDevice(answer: 0), ports: 0x3fc...0x403)
        }
        #expect(throws: DeviceError.portConflict(ports: 0x3f0...0x3f8, existing: 0x3f8...0x3ff)) {
            try builder.register(RecordingDevice(answer: 0), ports: 0x3f0...0x3f8)
        }
        #expect(throws: DeviceError.portConflict(ports: 0x3fa...0x3fa, existing: 0x3f8...0x3ff)) {
            try builder.register(RecordingDevice(answer: 0), ports: 0x3fa...0x3fa)
        }
        try builder.register(RecordingDevice(answer: 0), ports: 0x3f0...0x3f7)  // adjacent is fine
        try builder.register(RecordingDevice(answer: 0), ports: 0x400...0x400)
        #expect(DeviceError.portConflict(ports: 0x3fc...0x403, existing: 0x3f8...0x3ff).description
            == "ports 0x3fc-0x403 overlap a device already at 0x3f8-0x3ff")
    }

    @Test func accessesReachTheOwningDeviceWithAbsolutePorts() throws {
        let serial = RecordingDevice(answer: 0x11)
        let keyboard = RecordingDevice(answer: 0x22)
        let builder = PortIOBus.Builder()
        try builder.register(serial, ports: 0x3f8...0x3ff)     // registered out of order on purpose
        try builder.register(keyboard, ports: 0x60...0x64)
        let bus = builder.build()

        #expect(bus.read(port: 0x3f8, size: 1) == 0x11)
        #expect(bus.read(port: 0x3ff, size: 1) == 0x11)
        #expect(bus.read(port: 0x60, size: 1) == 0x22)
        #expect(bus.read(port: 0x64, size: 1) == 0x22)
        bus.write(port: 0x3fd, size: 2, value: 0xbeef)
        bus.write(port: 0x61, size: 4, value: 0xdead_beef)

        #expect(serial.accesses == [
            .init(isWrite: false, port: 0x3f8, size: 1, value: 0x11),
            .init(isWrite: false, port: 0x3ff, size: 1, value: 0x11),
            .init(isWrite: true, port: 0x3fd, size: 2, value: 0xbeef),
        ])
        #expect(keyboard.accesses == [
            .init(isWrite: false, port: 0x60, size: 1, value: 0x22),
            .init(isWrite: false, port: 0x64, size: 1, value: 0x22),
            .init(isWrite: true, port: 0x61, size: 4, value: 0xdead_beef),
        ])
        #expect(bus.unclaimedAccessCount == 0)
    }

    @Test func unclaimedPortsReadAllOnesAndAreCounted() throws {
        let device = RecordingDevice(answer: 0)
        let builder = PortIOBus.Builder()
        try builder.register(device, ports: 0x3f8...0x3ff)
        let bus = builder.build()

        #expect(bus.read(port: 0x3f7, size: 1) == 0xff)
        #expect(bus.read(port: 0x400, size: 2) == 0xffff)
        #expect(bus.read(port: 0x80, size: 4) == 0xffff_ffff)
        #expect(bus.read(port: 0x0, size: 1) == 0xff)
        #expect(bus.read(port: 0xffff, size: 1) == 0xff)
        bus.write(port: 0x80, size: 1, value: 0)   // POST code: nobody listens
        #expect(bus.unclaimedAccessCount == 6)
        #expect(device.accesses.isEmpty)
    }

    @Test func emptyBusClaimsNothing() {
        let bus = PortIOBus.Builder().build()
        #expect(bus.read(port: 0x3f8, size: 1) == 0xff)
        #expect(bus.unclaimedAccessCount == 1)
    }

    @Test func realDevicesBehindTheBus() throws {
        let sent = ByteRecorder()
        let uart = Serial8250(interrupt: RecordingInterruptLine(), output: { sent.append($0) })
        let builder = PortIOBus.Builder()
        try builder.register(uart, ports: 0x3f8...0x3ff)
        let bus = builder.build()
        bus.write(port: 0x3ff, size: 1, value: 0xa5)
        #expect(bus.read(port: 0x3ff, size: 1) == 0xa5)
        bus.write(port: 0x3f8, size: 1, value: 0x4f)
        #expect(sent.bytes == [0x4f])
        #expect(bus.read(port: 0x3fd, size: 1) == 0x60)  // LSR: THR empty
    }
}
