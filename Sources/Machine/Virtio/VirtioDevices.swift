import Devices
import GuestMemory
import KVM
import LinuxSystem

/// The machine's virtio devices, built from its configuration at the places `VirtioLayout`
/// gives: each wired to KVM (an irqfd for its interrupt line, an ioeventfd per queue so guest
/// notifications never exit to a vCPU thread), on one MMIO bus, served by one I/O thread.
struct VirtioDevices: Sendable {
    let devices: [VirtioMMIODevice]
    let bus: MMIOBus
    let ioThread: VirtioIOThread
    /// Queues whose notifications still exit to the vCPU thread (KVM refused an ioeventfd).
    let queuesWithoutIOEventFD: Int

    init(configuration: MachineConfiguration, memory: GuestMemoryMap, machine: VirtualMachine) throws(MachineError) {
        let layout = VirtioLayout(configuration)
        let wanted = configuration.disks.count + (configuration.entropy == nil ? 0 : 1) + (configuration.vsock == nil ? 0 : 1)
        guard wanted <= VirtioLayout.maximumDeviceCount else {
            throw .virtio(device: "(\(wanted) devices)", reason: "at most \(VirtioLayout.maximumDeviceCount) virtio devices fit the interrupt lines")
        }
        var devices: [VirtioMMIODevice] = []
        var claims: [(window: MMIOBus.Window, name: String, device: any MMIODevice)] = []
        var fallbacks = 0
        for (index, slot) in layout.slots.enumerated() {
            let line: EventNotifier, device: VirtioMMIODevice
            do {
                line = try EventNotifier()
                device = try VirtioMMIODevice(
                    name: slot.name, backend: try Self.makeBackend(slot, index: index, configuration), memory: memory,
                    interrupt: EventInterrupt(notifier: line))
            } catch let error as MachineError {
                throw error
            } catch { throw .virtio(device: slot.name, reason: "\(error)") }
            do { try machine.attachInterrupt(eventDescriptor: line.rawValue, gsi: slot.gsi) } catch {
                throw .virtio(device: slot.name, reason: "cannot attach interrupt line \(slot.gsi): \(error)")
            }
            for (queue, notifier) in device.queueNotifiers.enumerated() {
                // Without an ioeventfd the transport takes QueueNotify exits itself.
                do { try machine.attachNotification(eventDescriptor: notifier.rawValue, mmioAddress: slot.window.base + 0x50, length: 4, value: UInt64(queue)) } catch {
                    fallbacks += 1
                }
            }
            devices.append(device)
            claims.append((slot.window, slot.name, device))
        }
        do { bus = try MMIOBus(claims: claims) } catch { throw .device(error) }
        do { ioThread = try VirtioIOThread(devices: devices) } catch { throw .thread(error) }
        self.devices = devices
        queuesWithoutIOEventFD = fallbacks
    }

    /// The back-end of the device in `slot`, the `index`th of the layout.
    private static func makeBackend(_ slot: VirtioLayout.Slot, index: Int, _ configuration: MachineConfiguration) throws(MachineError) -> sending any VirtioBackend {
        switch slot.type {
        case .block:
            return try makeBlock(configuration.disks[index], name: slot.name)
        case .vsock:
            guard let vsock = configuration.vsock else { throw .virtio(device: slot.name, reason: "no vsock configuration") }
            return try makeVsock(vsock)
        default:
            let entropy = configuration.entropy ?? EntropyConfiguration()
            return VirtioEntropy(rate: entropy.rate, burst: entropy.burst)
        }
    }

    /// Listens at the vsock device's socket path, refusing a missing directory or a file in the way in one line.
    private static func makeVsock(_ vsock: VsockConfiguration) throws(MachineError) -> VirtioVsock {
        let directory = vsock.path.lastIndex(of: "/").map { String(vsock.path[..<$0]) } ?? "."
        guard FileStatus(path: directory.isEmpty ? "/" : directory)?.kind == .directory else {
            throw .vsock(path: vsock.path, reason: "its directory \(directory) does not exist")
        }
        do { return try VirtioVsock(guestCID: vsock.guestCID, path: vsock.path) } catch {
            throw .vsock(path: vsock.path, reason: error.refusal ?? "cannot listen: \(error.call) failed: \(error.errno)")
        }
    }

    /// Opens `disk` for a virtio-blk device, refusing what cannot be a disk in one line.
    private static func makeBlock(_ disk: DiskConfiguration, name: String) throws(MachineError) -> VirtioBlock {
        guard let status = FileStatus(path: disk.path) else { throw .disk(path: disk.path, reason: "no such file") }
        switch status.kind {
        case .regular, .blockDevice: break
        case .directory: throw .disk(path: disk.path, reason: "is a directory; expected a raw disk image file")
        default: throw .disk(path: disk.path, reason: "is not a regular file or block device; expected a raw disk image file")
        }
        do {
            let file = try DiskFile(path: disk.path, readOnly: disk.readOnly)
            return try VirtioBlock(disk: file, identifier: disk.identifier ?? name)
        } catch {
            throw .disk(path: disk.path, reason: "cannot open \(disk.readOnly ? "read-only" : "read-write"): \(error.errno)")
        }
    }
}

/// A device interrupt through KVM's irqfd: a write to the eventfd pulses the line in the kernel.
struct EventInterrupt: InterruptSignal {
    let notifier: EventNotifier
    func signal() { notifier.signal() }
}
