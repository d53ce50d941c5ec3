import Devices
import GuestMemory
import KVM
import LinuxSystem
import Glibc
import SystemPackage

/// The machine's virtio devices, built from its configuration at the places `VirtioLayout`
/// gives: each wired to KVM (an irqfd for its interrupt line, an ioeventfd per queue so guest
/// notifications never exit to a vCPU thread), on one MMIO bus, served by one I/O thread.
struct VirtioDevices: Sendable {
    let devices: [VirtioMMIODevice]
    let bus: MMIOBus
    let ioThread: VirtioIOThread
    /// Queues whose notifications still exit to the vCPU thread (KVM refused an ioeventfd).
    let queuesWithoutIOEventFD: Int

    init(configuration: MachineConfiguration, memory: GuestMemoryMap, machine: VirtualMachine, reclaimer: MemoryReclaimer) throws(MachineError) {
        let layout = VirtioLayout(configuration)
        let wanted = configuration.disks.count + configuration.networks.count + (configuration.entropy == nil ? 0 : 1)
            + (configuration.vsock == nil ? 0 : 1) + (configuration.balloon == nil ? 0 : 1)
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
                    name: slot.name, backend: try Self.makeBackend(slot, index: index, configuration, reclaimer: reclaimer), memory: memory,
                    interrupt: EventInterrupt(notifier: line), report: { FileDescriptor.standardError.writeLine("engram: " + $0) })
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

    /// Makes every disk image durable (the machine is paused and the I/O thread stopped).
    func syncDisks() throws(MachineError) {
        for device in devices {
            let failure = device.withBackend { backend -> MachineError? in
                guard let block = backend as? VirtioBlock else { return nil }
                do { try block.syncImage() } catch { return .disk(path: block.diskConfiguration.path, reason: "\(error)") }
                return nil
            }
            if let failure { throw failure }
        }
    }

    /// Every device's record, in layout order, with the files they serve now (a disk may have
    /// been replaced since boot). The machine is paused and the I/O thread stopped.
    func saveState() -> [VirtioDeviceRecord] {
        devices.map { device in
            let transport = device.saveState()
            return device.withBackend { backend in
                let block = backend as? VirtioBlock
                return VirtioDeviceRecord(
                    name: device.name, type: backend.deviceType, disk: block?.diskConfiguration, capacitySectors: block?.capacitySectors,
                    entropy: (backend as? VirtioEntropy)?.configuration, vsock: (backend as? VirtioVsock)?.configuration,
                    network: (backend as? VirtioNet)?.configuration, balloon: (backend as? VirtioBalloon)?.configuration,
                    balloonActualPages: (backend as? VirtioBalloon)?.actualPages, transport: transport)
            }
        }
    }

    /// Loads saved transports into the devices the same configuration built (names checked);
    /// `kept` are the host sides a live update handed over, by device name.
    func restoreState(_ records: [VirtioDeviceRecord], kept: [String: VirtioHandover] = [:]) throws(MachineError) {
        guard records.map(\.name) == devices.map(\.name) else {
            throw .incompatibleState("the saved virtio devices are [\(records.map(\.name).joined(separator: ", "))]; this machine has [\(devices.map(\.name).joined(separator: ", "))]")
        }
        for (record, device) in zip(records, devices) {
            if let saved = record.capacitySectors, let disk = record.disk, saved != Self.capacitySectors(of: device) {
                throw .disk(path: disk.path, reason: "holds \(Self.sizeText(sectors: Self.capacitySectors(of: device))); the saved guest's disk \(record.name) had \(Self.sizeText(sectors: saved))")
            }
            do { try device.restoreState(record.transport, kept: kept[record.name]) } catch { throw .incompatibleState(error.description) }
            if let pages = record.balloonActualPages { device.withBackend { ($0 as? VirtioBalloon)?.restoreActualPages(pages) } }
        }
    }

    /// A block device's capacity, from its configuration space (virtio_blk_config.capacity).
    /// A disk's size for a message, in bytes, or in sectors where a count from a snapshot or a
    /// peer is too large to be bytes (multiplying it would trap).
    static func sizeText(sectors: UInt64) -> String {
        let (bytes, overflow) = sectors.multipliedReportingOverflow(by: UInt64(VirtioBlock.sectorSize))
        return overflow ? "\(sectors) sectors" : "\(bytes) bytes"
    }

    private static func capacitySectors(of device: VirtioMMIODevice) -> UInt64 {
        device.read(offset: 0x100, size: 8)
    }

    /// The back-end of the device in `slot`, the `index`th of the layout.
    private static func makeBackend(
        _ slot: VirtioLayout.Slot, index: Int, _ configuration: MachineConfiguration, reclaimer: MemoryReclaimer
    ) throws(MachineError) -> sending any VirtioBackend {
        switch slot.type {
        case .block:
            if let limit = configuration.disks[index].rateLimit, !limit.isValid {
                throw .disk(path: configuration.disks[index].path, reason: "its rate limit has a rate or burst of 0; both must be at least 1")
            }
            let block: VirtioBlock
            if let descriptor = configuration.inheritedDevices[slot.name]?.descriptor(named: VirtioBlock.diskDescriptorName) {
                let disk = configuration.disks[index]
                let owned = OwnedFileDescriptor(taking: descriptor)
                _ = owned.setCloseOnExec(true)
                do { block = try VirtioBlock(disk: DiskFile(adopting: owned, path: disk.path, readOnly: disk.readOnly), identifier: disk.identifier ?? slot.name, rateLimit: disk.rateLimit) } catch {
                    throw .disk(path: disk.path, reason: "the image kept open across the update cannot be read: \(error.errno)")
                }
            } else {
                block = try makeBlock(configuration.disks[index], name: slot.name)
            }
            // Helpers share large batches with the I/O thread: up to 3, one fewer than the host's CPUs.
            do { try block.startHelpers(min(HostProcessors.online, 4) - 1, name: "\(slot.name)-copy") } catch {
                throw .thread(error)
            }
            return block
        case .vsock:
            guard let vsock = configuration.vsock else { throw .virtio(device: slot.name, reason: "no vsock configuration") }
            return try makeVsock(vsock, inheritedListener: configuration.inheritedDevices[slot.name]?.descriptor(named: VirtioVsock.listenerDescriptorName))
        case .network:
            var network = configuration.networks[index - configuration.disks.count]
            if let kept = configuration.inheritedDevices[slot.name]?.descriptor(named: VirtioNet.tapDescriptorName) { network.backend = .descriptor(kept) }
            return try makeNetwork(network)
        case .balloon:
            return VirtioBalloon(configuration.balloon ?? BalloonConfiguration(), reclaimer: reclaimer)
        default:
            let entropy = configuration.entropy ?? EntropyConfiguration()
            // A saved state is data from a file: a limit of 0 is refused here, not trapped on.
            guard entropy.rate > 0, entropy.burst > 0 else {
                throw .virtio(device: slot.name, reason: "entropy limit rate \(entropy.rate), burst \(entropy.burst); both must be at least 1")
            }
            return VirtioEntropy(rate: entropy.rate, burst: entropy.burst)
        }
    }

    /// Listens at the vsock device's socket path, refusing a missing directory or a file in the
    /// way in one line; or goes on with the listener a live update kept open (`inheritedListener`).
    private static func makeVsock(_ vsock: VsockConfiguration, inheritedListener: CInt?) throws(MachineError) -> VirtioVsock {
        if let inheritedListener {
            let owned = OwnedFileDescriptor(taking: inheritedListener)
            owned.setCloseOnExec(true)
            do { return try VirtioVsock(guestCID: vsock.guestCID, path: vsock.path, adoptingListener: owned) } catch {
                throw .vsock(path: vsock.path, reason: "the listener kept open across the update cannot be used: \(error)")
            }
        }
        let directory = vsock.path.lastIndex(of: "/").map { String(vsock.path[..<$0]) } ?? "."
        guard FileStatus(path: directory.isEmpty ? "/" : directory)?.kind == .directory else {
            throw .vsock(path: vsock.path, reason: "its directory \(directory) does not exist")
        }
        do { return try VirtioVsock(guestCID: vsock.guestCID, path: vsock.path) } catch {
            throw .vsock(path: vsock.path, reason: error.refusal ?? "cannot listen: \(error.call) failed: \(error.errno)")
        }
    }

    /// Attaches to the interface's tap (by name, or the descriptor handed over), refusing in one
    /// line what is not a usable tap.
    private static func makeNetwork(_ network: NetworkConfiguration) throws(MachineError) -> VirtioNet {
        let tap: TapDevice
        do {
            switch network.backend {
            case .tap(let name): tap = try TapDevice(name: name)
            case .descriptor(let fd):
                guard fcntl(fd, F_GETFD) >= 0 else { throw MachineError.network(network.hostSide, reason: "is not an open descriptor") }
                tap = try TapDevice(adopting: OwnedFileDescriptor(taking: fd))
                _ = tap.descriptor.setCloseOnExec(true)
            }
        } catch let error as MachineError {
            throw error
        } catch let error as SystemError {
            throw .network(network.hostSide, reason: Self.tapFailure(error))
        } catch { throw .network(network.hostSide, reason: "\(error)") }
        return VirtioNet(tap: tap, mac: network.mac ?? .random())
    }

    private static func tapFailure(_ error: SystemError) -> String {
        switch (error.call, error.errno) {
        case ("TUNSETIFF", .notPermitted): "cannot attach: the tap belongs to another user, or creating it needs CAP_NET_ADMIN"
        case ("TUNSETIFF", .resourceBusy): "cannot attach: another process has it open (a tap queue serves one VMM)"
        case ("TUNSETIFF", .invalidArgument): "cannot attach: it exists but is not a tap with IFF_NO_PI and IFF_VNET_HDR (or the name is invalid)"
        case ("open", .noSuchFileOrDirectory): "cannot open /dev/net/tun: no such device (is the tun module loaded?)"
        case ("TUNGETIFF", _): "is not an open tap device"
        default: "\(error.call) failed: \(error.errno)"
        }
    }

    /// Opens `disk` for a virtio-blk device, refusing what cannot be a disk in one line.
    private static func makeBlock(_ disk: DiskConfiguration, name: String) throws(MachineError) -> VirtioBlock {
        let file = try openDisk(disk)
        do { return try VirtioBlock(disk: file, identifier: disk.identifier ?? name, rateLimit: disk.rateLimit) } catch {
            throw .disk(path: disk.path, reason: "cannot read its size: \(error.errno)")
        }
    }

    /// Opens the file `disk` names, refusing a missing file, a directory or a special file in one line.
    static func openDisk(_ disk: DiskConfiguration) throws(MachineError) -> DiskFile {
        guard let status = FileStatus(path: disk.path) else { throw .disk(path: disk.path, reason: "no such file") }
        switch status.kind {
        case .regular, .blockDevice: break
        case .directory: throw .disk(path: disk.path, reason: "is a directory; expected a raw disk image file")
        default: throw .disk(path: disk.path, reason: "is not a regular file or block device; expected a raw disk image file")
        }
        do { return try DiskFile(path: disk.path, readOnly: disk.readOnly) } catch {
            throw .disk(path: disk.path, reason: "cannot open \(disk.readOnly ? "read-only" : "read-write"): \(error.errno)")
        }
    }
}

/// A device interrupt through KVM's irqfd: a write to the eventfd pulses the line in the kernel.
struct EventInterrupt: InterruptSignal {
    let notifier: EventNotifier
    func signal() { notifier.signal() }
}
