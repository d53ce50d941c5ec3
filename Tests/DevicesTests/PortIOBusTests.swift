import Devices
import LinuxSystem
import Testing

/// Dispatch by port range, conflicts, and what unclaimed ports answer.
@Suite struct PortIOBusTests {
    /// A device that answers reads with a fixed value and records every access.
    private final class RecordingDevice: PortIODevice {
        struct Access: Equatable { var isWrite: Bool; var port: UInt16; var size: Int; var value: UInt32 }

        let answer: UInt32
        private let recorded = Locked<[Access]>([])

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

    /// The error `register` threw, or nil if it succeeded.
    private func conflict(registering ports: ClosedRange<UInt16>, on builder: PortIOBus.Builder) -> DeviceError? {
        do {
            try builder.register(RecordingDevice(answer: 0), ports: ports)
            return nil
        } catch {
            return error
        }
    }

    @Test func overlappingClaimsAreRefused() throws {
        let builder = PortIOBus.Builder()
        try builder.register(RecordingDevice(answer: 0), ports: 0x3f8...0x3ff)
        for clashing in [0x3fc...0x403, 0x3f0...0x3f8, 0x3fa...0x3fa, 0x3f8...0x3ff, 0x300...0x4ff] as [ClosedRange<UInt16>] {
            guard case .portConflict(_, let ports, _, let existingPorts)? = conflict(registering: clashing, on: builder) else {
                Issue.record("\(clashing) was accepted over 0x3f8...0x3ff")
                continue
            }
            #expect(ports == clashing)
            #expect(existingPorts == 0x3f8...0x3ff)
        }
        #expect(conflict(registering: 0x3f0...0x3f7, on: builder) == nil)  // adjacent is fine
        #expect(conflict(registering: 0x400...0x400, on: builder) == nil)
    }

    @Test func conflictMessageNamesBothDevices() throws {
        let builder = PortIOBus.Builder()
        let uart = Serial8250(interrupt: RecordingInterruptLine(), output: { _ in })
        let keyboard = I8042(interrupt: RecordingInterruptLine(), onReset: {})
        try builder.register(uart, ports: 0x3f8...0x3ff)
        try builder.register(keyboard, ports: 0x60...0x60)
        #expect(throws: DeviceError.portConflict(device: "I8042", ports: 0x3fc...0x403,
                                                 existingDevice: "Serial8250", existingPorts: 0x3f8...0x3ff)) {
            try builder.register(keyboard, ports: 0x3fc...0x403)
        }
        #expect(DeviceError.portConflict(device: "I8042", ports: 0x3fc...0x403, existingDevice: "Serial8250", existingPorts: 0x3f8...0x3ff).description
            == "cannot place I8042 at ports 0x3fc-0x403: they overlap Serial8250 at 0x3f8-0x3ff")
        #expect(DeviceError.portConflict(device: "PowerControlPort", ports: 0x60...0x61, existingDevice: "I8042", existingPorts: 0x60...0x60).description
            == "cannot place PowerControlPort at ports 0x60-0x61: they overlap I8042 at 0x60")
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

    /// Many small claims with gaps between them: every claimed port finds its own device and every gap is empty.
    @Test func binarySearchFindsEveryRangeAndEveryGap() throws {
        let builder = PortIOBus.Builder()
        var devices: [(ports: ClosedRange<UInt16>, device: RecordingDevice)] = []
        for index in (0..<40).reversed() {
            let first = UInt16(index * 10)
            let ports = first...(first + UInt16(index % 4))   // 1 to 4 ports, then a gap
            let device = RecordingDevice(answer: UInt32(index))
            try builder.register(device, ports: ports)
            devices.append((ports, device))
        }
        try builder.register(RecordingDevice(answer: 0xffee), ports: 0xfff0...0xffff)
        let bus = builder.build()

        for (ports, device) in devices {
            for port in ports { #expect(bus.read(port: port, size: 1) == device.answer) }
            #expect(bus.read(port: ports.upperBound + 1, size: 1) == 0xff)
        }
        #expect(bus.read(port: 0xffff, size: 1) == 0xffee)
        #expect(bus.read(port: 0xffef, size: 1) == 0xff)
        #expect(bus.unclaimedAccessCount == 41)
    }

    @Test func unclaimedPortsReadAllOnesOfTheAccessSize() throws {
        let device = RecordingDevice(answer: 0)
        let builder = PortIOBus.Builder()
        try builder.register(device, ports: 0x3f8...0x3ff)
        let bus = builder.build()

        #expect(bus.read(port: 0x3f7, size: 1) == 0xff)
        #expect(bus.read(port: 0x400, size: 2) == 0xffff)
        #expect(bus.read(port: 0x80, size: 4) == 0xffff_ffff)
        #expect(bus.read(port: 0x0, size: 1) == 0xff)
        #expect(bus.read(port: 0xffff, size: 2) == 0xffff)
        bus.write(port: 0x80, size: 1, value: 0)   // POST code: nobody listens
        #expect(bus.unclaimedAccessCount == 6)
        #expect(device.accesses.isEmpty)
    }

    @Test func emptyBusClaimsNothing() {
        let bus = PortIOBus.Builder().build()
        #expect(bus.read(port: 0x3f8, size: 1) == 0xff)
        bus.write(port: 0x3f8, size: 1, value: 0x41)
        #expect(bus.unclaimedAccessCount == 2)
    }

    @Test func concurrentAccessesAreAllCounted() async throws {
        let bus = PortIOBus.Builder().build()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { for _ in 0..<1000 { _ = bus.read(port: 0x80, size: 1) } }
            }
        }
        #expect(bus.unclaimedAccessCount == 4000)
    }

    @Test func realDevicesBehindTheBus() throws {
        let sent = ByteRecorder()
        let uart = Serial8250(interrupt: RecordingInterruptLine(), output: { sent.append($0) })
        let keyboard = I8042(interrupt: RecordingInterruptLine(), onReset: {})
        let builder = PortIOBus.Builder()
        try builder.register(uart, ports: 0x3f8...0x3ff)
        try builder.register(keyboard, ports: 0x60...0x60)
        try builder.register(keyboard, ports: 0x64...0x64)
        let bus = builder.build()
        bus.write(port: 0x3ff, size: 1, value: 0xa5)
        #expect(bus.read(port: 0x3ff, size: 1) == 0xa5)
        bus.write(port: 0x3f8, size: 1, value: 0x4f)
        #expect(sent.bytes == [0x4f])
        #expect(bus.read(port: 0x3fd, size: 1) == 0x60)  // LSR: THR empty
        bus.write(port: 0x64, size: 1, value: 0xaa)
        #expect(bus.read(port: 0x64, size: 1) & 0x01 == 0x01)
        #expect(bus.read(port: 0x60, size: 1) == 0x55)
        #expect(bus.read(port: 0x61, size: 1) == 0xff)   // between the controller's two ports
    }
}
