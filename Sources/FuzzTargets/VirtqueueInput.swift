import Devices
import GuestMemory

/// A driver's split virtqueue: the input's first two bytes choose the queue size and the
/// features (indirect descriptors, EVENT_IDX), the rest is written into 64 KiB of guest memory
/// holding the descriptor table (at 0), the available ring (at 0x4000) and the used ring (at
/// 0x6000); then chains are popped, their readable bytes copied out and their writable bytes
/// filled, as a device does, and the used ring published.
enum VirtqueueInput {
    static let memorySize: UInt64 = 64 << 10

    static let (region, memory): (GuestRegion, GuestMemoryMap) = {
        do {
            let region = try GuestRegion(name: "ram", sizeInBytes: memorySize, backing: .memfd)
            let map = GuestMemoryMap(regions: [region], mappings: [
                GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: memorySize, region: region, regionOffset: RegionOffset(0)),
            ])
            return (region, map)
        } catch {
            fatalError("cannot make the fuzz target's guest memory: \(error)")
        }
    }()

    static func run(_ bytes: [UInt8]) {
        guard bytes.count >= 2 else { return }
        var contents = Array(bytes.dropFirst(2).prefix(Int(memorySize)))
        contents += [UInt8](repeating: 0, count: Int(memorySize) - contents.count)
        guard (try? region.write(contents, at: RegionOffset(0))) != nil else { return }
        var configuration = VirtqueueConfiguration(size: UInt16(1) << (bytes[0] % 10))
        configuration.ready = true
        configuration.descriptorTable = 0
        configuration.availableRing = 0x4000
        configuration.usedRing = 0x6000
        let features = (bytes[1] & 1 != 0 ? VirtioFeature.indirectDescriptors : 0) | (bytes[1] & 2 != 0 ? VirtioFeature.eventIndex : 0)
        guard var queue = try? Virtqueue(configuration, maximumSize: 256, features: features | VirtioFeature.version1, memory: memory) else { return }
        var chain = DescriptorChain(capacity: 64)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<32 {
            guard (try? queue.pop(into: &chain, memory: memory)) == true else { break }
            let readable = min(chain.readableBytes, buffer.count)
            _ = try? chain.copyReadable(from: 0, count: readable, into: &buffer, at: 0, memory: memory)
            let writable = min(chain.writableBytes, buffer.count)
            _ = try? chain.copyToWritable(buffer, from: 0, count: writable, at: 0, memory: memory)
            queue.putUsed(head: chain.head, length: UInt32(writable))
        }
        queue.publishUsed()
        _ = queue.needsInterrupt()
        _ = try? queue.armNotification()
    }
}
