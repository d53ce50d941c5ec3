import GuestMemory
import LinuxSystem

/// The transmit and control queues: frames from the guest to the tap, and the driver's commands.
extension VirtioNet {
    /// Writes each frame the guest made available to the tap in one writev, straight from its
    /// buffers. A frame shorter than the header or longer than any frame, or one the tap refuses
    /// (a header it does not accept), is dropped and counted; the guest gets its buffer back either way.
    func serveTransmit(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        var used = false
        while try queue.pop(into: &transmitChain, memory: memory) {
            transmit(memory: memory)
            queue.putUsed(head: transmitChain.head, length: 0)
            used = true
        }
        return used
    }

    private func transmit(memory: GuestMemoryMap) {
        let length = transmitChain.readableBytes
        guard running, length > Int(TapDevice.headerSize), length <= Self.frameLimit else {
            counters.txDropped.add(1, ordering: .relaxed)
            return
        }
        do {
            guard try transmitChain.list(writable: false, from: 0, count: length, in: vectors, memory: memory) else {
                counters.txDropped.add(1, ordering: .relaxed)
                return
            }
        } catch {
            counters.txDropped.add(1, ordering: .relaxed)
            return
        }
        do {
            // A tap whose queue is full would block: the frame is lost, as on a wire.
            guard let written = try vectors.sendOnce(to: tap.descriptor.rawValue, subject: tapSubject), written == length else {
                counters.txDropped.add(1, ordering: .relaxed)
                return
            }
        } catch {
            // EINVAL: the tap refused the header (bad checksum offsets, an unknown segmentation type).
            counters.txDropped.add(1, ordering: .relaxed)
            if error.errno != .invalidArgument { counters.errors.add(1, ordering: .relaxed) }
            return
        }
        counters.txPackets.add(1, ordering: .relaxed)
        counters.txBytes.add(length - Int(TapDevice.headerSize), ordering: .relaxed)
    }

    /// Answers each command: the announce acknowledgement clears the ANNOUNCE status; anything
    /// else is refused with VIRTIO_NET_ERR (no receive filters, MAC changes or queue pairs offered).
    func serveControl(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        var used = false
        while try queue.pop(into: &controlChain, memory: memory) {
            var answer = NetworkControl.error
            if controlChain.readableBytes >= 2, (try? controlChain.copyReadable(from: 0, count: 2, into: &scratch, at: 0, memory: memory)) != nil,
               scratch[0] == NetworkControl.announceClass, scratch[1] == NetworkControl.announceAcknowledge {
                status &= ~NetworkStatus.announce
                answer = NetworkControl.ok
            }
            var written: UInt32 = 0
            if controlChain.writableBytes >= 1 {
                scratch[0] = answer
                try? controlChain.copyToWritable(scratch, from: 0, count: 1, at: 0, memory: memory)
                written = 1
            }
            queue.putUsed(head: controlChain.head, length: written)
            used = true
        }
        return used
    }
}
