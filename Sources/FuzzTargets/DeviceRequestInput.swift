import Devices
import FoundationEssentials
import Glibc
import GuestMemory
import LinuxSystem

/// A driver's requests to a device, through the MMIO transport as a guest makes them: the input's
/// first byte chooses the device (block, entropy, vsock's transmit queue), the second the
/// features (indirect descriptors, EVENT_IDX), the third the queue size; the rest is the first
/// 64 KiB of 256 KiB of guest memory with the descriptor table at 0, the available ring at
/// 0x4000 and the used ring at 0x6000. The driver resets the device, negotiates, enables the
/// queue and notifies it; the device parses every chain (block headers and sector ranges, vsock
/// packet headers and their lengths) and answers.
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
            let map = memory.1
            return [
                (try VirtioMMIODevice(name: "block", backend: block, memory: map, interrupt: NoInterrupt()), 0),
                (try VirtioMMIODevice(name: "entropy", backend: entropy, memory: map, interrupt: NoInterrupt()), 0),
                (try VirtioMMIODevice(name: "vsock", backend: vsock, memory: map, interrupt: NoInterrupt()), 1),
            ]
        } catch {
            fatalError("cannot make the fuzz target's devices: \(error)")
        }
    }()

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
        set(VirtioMMIORegister.queueNotify, UInt32(queue))
        device.serveQueue(queue)
        set(VirtioMMIORegister.status, 0)
    }
}
