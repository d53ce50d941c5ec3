import Devices
import Foundation
import LinuxSystem
@testable import Migration
import Testing

/// Devices' host sides in the handoff: recorded in the old process (descriptors named
/// DEVICE.ROLE, state in a memfd) and given back to back-ends in the new one.
@Suite struct DeviceHandoffTests {
    @Test func aDevicesHandoverComesBackAsTheBackEndGaveIt() throws {
        let state = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let vsock = VirtioHandover(descriptors: [.init(name: "listener", descriptor: 41), .init(name: "conn.5000.1073741824", descriptor: 42)], state: state)
        let disk = VirtioHandover(descriptors: [.init(name: "disk", descriptor: 40)])
        let (devices, files) = try InheritedDevice.recording([("blk0", disk), ("vsock0", vsock)])
        #expect(devices.map(\.device) == ["blk0", "vsock0"])
        #expect(devices[1].descriptors.map(\.name) == ["vsock0.listener", "vsock0.conn.5000.1073741824"])
        #expect(devices[0].state == nil && devices[1].state == files.first?.rawValue)
        // The new process reads the state from its own copy of the memfd (here a duplicate).
        var inherited = devices[1]
        inherited.state = dup(try #require(files.first).rawValue)
        #expect(try inherited.handover() == vsock)
        #expect(try devices[0].handover() == disk)
    }

    @Test func descriptorsNotNamedForTheirDeviceAreRefused() {
        let stray = InheritedDevice(device: "vsock0", descriptors: [InheritedDescriptor(name: "blk0.disk", descriptor: 3)])
        #expect(throws: LiveUpdateError.restoreFailed(reason: "update state: device vsock0 lists descriptor blk0.disk, which is not named vsock0.ROLE")) {
            _ = try stray.handover()
        }
    }

    @Test func devicesRoundTripThroughTheHandoffsJSON() throws {
        let devices = [
            InheritedDevice(device: "blk0", descriptors: [InheritedDescriptor(name: "blk0.disk", descriptor: 20)]),
            InheritedDevice(device: "vsock0", descriptors: [InheritedDescriptor(name: "vsock0.listener", descriptor: 21)], state: 22),
        ]
        #expect(devices[0].descriptor(role: "disk") == 20 && devices[1].descriptor(role: "disk") == nil)
        let json = try JSONEncoder().encode(devices)
        #expect(try JSONDecoder().decode([InheritedDevice].self, from: json) == devices)
    }
}
