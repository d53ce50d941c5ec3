import Devices
import FoundationEssentials
import Glibc
import GuestMemory
import LinuxSystem
import TestSupport

/// A driver's requests to a device, through the MMIO transport as a guest makes them: the input's
/// first byte chooses the device and queue (block; entropy; vsock's transmit queue; the balloon's
/// inflate, deflate, statistics and free-page reporting queues; and, where this process may make
/// a tap, the network device's transmit, control and receive queues), the second the features
/// (indirect descriptors, EVENT_IDX; for the network device, no mergeable receive buffers and no
/// receive offloads), the third the queue size; the rest is the first 64 KiB of 256 KiB of guest
/// memory with the descriptor table at 0, the available ring at 0x4000 and the used ring at
/// 0x6000. The driver resets the device, negotiates, enables the queue and notifies it; the
/// device parses every chain (block headers and sector ranges, vsock packet headers and their
/// lengths, balloon page numbers and reported ranges, network frames and control commands) and
/// answers. Before the receive queue is served, two frames (60 and 1514 bytes) arrive on the
/// tap, to be written into whatever buffers the input posted.
enum DeviceRequestInput {
    static let memorySize: UInt64 = 256 << 10
    static let inputMemory = 64 << 10

    struct NoInterrupt: InterruptSignal { func signal() {} }

    static let memory: (GuestRegion, GuestMemoryMap) = {
        do {
            let region = try GuestRegion(name: "ram", sizeInBytes: memorySize, backing: .memfd)
            return (region, GuestMemoryMap(regions: [region], mappings: [
                GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: memorySize, region: region, regionOffset: RegionOffset(0)),
            ]))
        } catch {
            fatalError("cannot make the fuzz target's guest memory: \(error)")
        }
    }()

    /// The tap the network device sits on, in a network namespace of its own, and the far side
    /// of it; nil where this process may not make one (not root, no tun driver).
    static let network: TapWire? = {
        guard TapWire.available, let wire = try? TapWire() else { return nil }
        // A fuzzing process ends by exit(3): the namespace goes with it.
        atexit { DeviceRequestInput.network?.removeNamespace() }
        return wire
    }()

    /// The devices, made once: (device, the queue the input feeds).
    static let devices: [(VirtioMMIODevice, Int)] = {
        do {
            let disk = "/dev/shm/engram-fuzz-disk-\(getpid())"
            let file = try OwnedFileDescriptor.open(disk, .readWrite, options: [.create, .truncate], permissions: [.ownerReadWrite])
            guard ftruncate(file.rawValue, 1 << 20) == 0 else { throw SystemError.last("ftruncate", on: disk) }
            let block = try VirtioBlock(disk: try DiskFile(path: disk, readOnly: false), identifier: "fuzz")
            try? FileManager.default.removeItem(atPath: disk)
            let entropy = VirtioEntropy(rate: 1 << 30, burst: 1 << 20)
            let vsockPath = "/tmp/engram-fuzz-vsock-\(getpid()).sock"
            let vsock = try VirtioVsock(guestCID: 3, path: vsockPath)
            try? FileManager.default.removeItem(atPath: vsockPath)
            let balloon = VirtioBalloon(BalloonConfiguration(amountMiB: 1, deflateOnOOM: true, statisticsIntervalSeconds: 1, freePageReporting: true),
                                        reclaimer: MemoryReclaimer())
            let map = memory.1
            let balloonDevice = try VirtioMMIODevice(name: "balloon", backend: balloon, memory: map, interrupt: NoInterrupt())
            var devices = [
                (try VirtioMMIODevice(name: "block", backend: block, memory: map, interrupt: NoInterrupt()), 0),
                (try VirtioMMIODevice(name: "entropy", backend: entropy, memory: map, interrupt: NoInterrupt()), 0),
                (try VirtioMMIODevice(name: "vsock", backend: vsock, memory: map, interrupt: NoInterrupt()), 1),
                (balloonDevice, 0), (balloonDevice, 1), (balloonDevice, 2), (balloonDevice, 3),
            ]
            if let network {
                let mac = MACAddress(bytes: [2, 0, 0, 0, 0, 1])!  // six bytes: always an address
                let net = try VirtioMMIODevice(name: "net", backend: VirtioNet(tap: network.tap, mac: mac), memory: map, interrupt: NoInterrupt())
                devices += [(net, VirtioNet.transmitQueue), (net, VirtioNet.controlQueue), (net, VirtioNet.receiveQueue)]
            }
            return devices
        } catch {
            fatalError("cannot make the fuzz target's devices: \(error)")
        }
    }()

    /// The frames sent towards the network device: broadcast, from a made-up address, IPv4's type.
    static let frame: [UInt8] = [UInt8](repeating: 0xff, count: 6) + [2, 0, 0, 0, 0, 2, 0x08, 0x00]
        + (0..<1500).map { UInt8(truncatingIfNeeded: $0) }

    static func run(_ bytes: [UInt8]) {
        guard bytes.count >= 3 else { return }
        var contents = Array(bytes.dropFirst(3).prefix(inputMemory))
        contents += [UInt8](repeating: 0, count: Int(memorySize) - contents.count)
        guard (try? memory.0.write(contents, at: RegionOffset(0))) != nil else { return }
        let (device, queue) = devices[Int(bytes[0]) % devices.count]
        func set(_ register: UInt64, _ value: UInt32) { device.write(offset: register, size: 4, value: UInt64(value)) }
        func get(_ register: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: device.read(offset: register, size: 4)) }
        set(VirtioMMIORegister.status, 0)
        set(VirtioMMIORegister.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        set(VirtioMMIORegister.deviceFeaturesSelect, 0)
        var offered = UInt64(get(VirtioMMIORegister.deviceFeatures))
        set(VirtioMMIORegister.deviceFeaturesSelect, 1)
        offered |= UInt64(get(VirtioMMIORegister.deviceFeatures)) << 32
        var chosen = offered & ~(VirtioFeature.indirectDescriptors | VirtioFeature.eventIndex)
        if bytes[1] & 1 != 0 { chosen |= offered & VirtioFeature.indirectDescriptors }
        if bytes[1] & 2 != 0 { chosen |= offered & VirtioFeature.eventIndex }
        if bytes[1] & 4 != 0 { chosen &= ~NetworkFeature.mergeableReceiveBuffers }
        if bytes[1] & 8 != 0 { chosen &= ~(NetworkFeature.guestChecksum | NetworkFeature.guestTSO4 | NetworkFeature.guestTSO6 | NetworkFeature.guestECN) }
        set(VirtioMMIORegister.driverFeaturesSelect, 0)
        set(VirtioMMIORegister.driverFeatures, UInt32(truncatingIfNeeded: chosen))
        set(VirtioMMIORegister.driverFeaturesSelect, 1)
        set(VirtioMMIORegister.driverFeatures, UInt32(truncatingIfNeeded: chosen >> 32))
        set(VirtioMMIORegister.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK)
        set(VirtioMMIORegister.queueSelect, UInt32(queue))
        set(VirtioMMIORegister.queueSize, UInt32(1) << (bytes[2] % 9))
        set(VirtioMMIORegister.queueDescriptorLow, 0)
        set(VirtioMMIORegister.queueDriverLow, 0x4000)
        set(VirtioMMIORegister.queueDeviceLow, 0x6000)
        set(VirtioMMIORegister.queueReady, 1)
        set(VirtioMMIORegister.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK | VirtioStatus.driverOK)
        if let network, device.name == "net" {
            var left = [UInt8](repeating: 0, count: VirtioNet.frameLimit)
            while (try? network.tap.receive(into: &left)) ?? nil != nil {}  // what an earlier input left
            if queue == VirtioNet.receiveQueue { for length in [60, 1514] { try? network.send(Array(frame[0..<length])) } }
        }
        set(VirtioMMIORegister.queueNotify, UInt32(queue))
        device.serveQueue(queue)
        set(VirtioMMIORegister.status, 0)
    }
}
