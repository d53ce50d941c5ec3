import Devices
import LinuxSystem

/// Devices' host sides between `VirtioHandover` (what a back-end keeps or continues from) and
/// the handoff's `InheritedDevice` records, on both sides of the exec.
extension InheritedDevice {
    /// The most back-end state read back (vsock: 1024 connections of 256 KiB buffered each, and the table).
    static let maximumStateBytes = 320 << 20

    /// The old process's side: each device's handover as the handoff records it, its state in a
    /// memfd. The memfds are returned to be held until exec (a failed exec closes them).
    package static func recording(
        _ handovers: [(name: String, handover: VirtioHandover)]
    ) throws(LiveUpdateError) -> (devices: [InheritedDevice], stateFiles: [OwnedFileDescriptor]) {
        var devices: [InheritedDevice] = []
        var files: [OwnedFileDescriptor] = []
        for (name, handover) in handovers {
            var device = InheritedDevice(
                device: name, descriptors: handover.descriptors.map { InheritedDescriptor(name: "\(name).\($0.name)", descriptor: $0.descriptor) })
            if !handover.state.isEmpty {
                do { files.append(try OwnedFileDescriptor.memoryFile(name: "\(name)-state", holding: handover.state)) } catch {
                    throw .deviceNotInheritable(device: name, reason: "its state cannot be kept: \(error)")
                }
                device.state = files.last?.rawValue
            }
            devices.append(device)
        }
        return (devices, files)
    }

    /// The new process's side: the handover as the back-end gave it (names without the device
    /// prefix), its state read from the memfd, which is closed.
    package func handover() throws(LiveUpdateError) -> VirtioHandover {
        let prefix = device + "."
        var descriptors: [VirtioHandover.Descriptor] = []
        for kept in self.descriptors {
            guard kept.name.hasPrefix(prefix), kept.name.count > prefix.count else {
                throw .restoreFailed(reason: "update state: device \(device) lists descriptor \(kept.name), which is not named \(prefix)ROLE")
            }
            descriptors.append(.init(name: String(kept.name.dropFirst(prefix.count)), descriptor: kept.descriptor))
        }
        guard let state else { return VirtioHandover(descriptors: descriptors) }
        let file = OwnedFileDescriptor(taking: state)
        do {
            return VirtioHandover(descriptors: descriptors, state: try file.readWholeFile(limit: Self.maximumStateBytes, subject: "\(device) state"))
        } catch {
            throw .restoreFailed(reason: "update state: device \(device)'s kept state cannot be read: \(error)")
        }
    }
}

extension UpdateHandoff {
    /// Every device's kept host side, by device name: `devices`, or for a handoff written before
    /// them, the disks of `disks`.
    package func inheritedDevices() throws(LiveUpdateError) -> [String: VirtioHandover] {
        guard let devices else {
            return Dictionary((disks ?? []).map { ($0.name, VirtioHandover(descriptors: [.init(name: VirtioBlock.diskDescriptorName, descriptor: $0.descriptor)])) },
                              uniquingKeysWith: { first, _ in first })
        }
        var result: [String: VirtioHandover] = [:]
        for device in devices {
            guard result[device.device] == nil else { throw .restoreFailed(reason: "update state: device \(device.device) is listed twice") }
            result[device.device] = try device.handover()
        }
        return result
    }
}
