import GuestMemory
import LinuxSystem

/// The receive queue: frames from the tap into the buffers the guest posts.
extension VirtioNet {
    var mergeable: Bool { features & NetworkFeature.mergeableReceiveBuffers != 0 }

    /// The largest frame the tap can hand over with the offloads the driver took.
    var largestFrame: Int {
        features & (NetworkFeature.guestTSO4 | NetworkFeature.guestTSO6) != 0 ? Self.frameLimit : Self.plainFrameLimit
    }

    /// Takes frames from the tap while the guest has buffers for them, a budget per wake-up.
    /// Out of buffers, it stops reading the tap and arms the queue, so the guest's next buffers
    /// bring it back; out of frames, it watches the tap again.
    func serveReceive(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        receiveWakePending = false
        guard running else { return false }
        var used = false
        for _ in 0..<Self.receiveBudget {
            // Every frame's first chain is checked, a frame kept across a live update's included
            // (it arrives with no chain held, and the driver may have rewritten the one it had).
            guard try takeReceiveChain(&queue, memory: memory) else {
                watchTap(false)
                return used
            }
            if pendingFrameLength == 0 {
                let chain = receiveChains[0]
                if chain.writableBytes >= largestFrame {
                    guard let length = readDirect(into: chain, memory: memory) else { return used }
                    guard length > 0 else { continue }
                    finishFrame(chains: 1, lengths: length, &queue, memory: memory)
                    used = true
                    continue
                }
                guard let length = readScratch() else { return used }
                guard length > 0 else { continue }
                pendingFrameLength = length
            }
            switch try deliverPending(&queue, memory: memory) {
            case .delivered: used = true
            case .dropped(let returned): used = used || returned
            case .waiting:
                watchTap(false)
                return used
            }
        }
        wakeReceive()  // more may be waiting: come back after the other queues had a turn
        return used
    }

    /// Makes sure one receive chain is held; false (queue armed) when the guest has none posted.
    /// The first chain of a frame carries its header, num_buffers included: a driver that posts
    /// one with less room than that breaks the spec, and the device needs a reset. (It crashed
    /// the VMM before: writing num_buffers past the buffer failed a precondition. Found by fuzzing.)
    private func takeReceiveChain(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        while heldReceiveChains == 0 {
            if try queue.pop(into: &receiveChains[0], memory: memory) {
                heldReceiveChains = 1
            } else if try !queue.armNotification() {
                return false
            }
        }
        guard receiveChains[0].writableBytes >= Int(TapDevice.headerSize) else {
            throw .bufferTooSmall(writable: receiveChains[0].writableBytes, needed: Int(TapDevice.headerSize))
        }
        return true
    }

    /// Reads a frame straight into a chain that can hold any: its length with the header, 0 for
    /// a frame lost to an error, nil when the tap has none (then it is watched again).
    private func readDirect(into chain: DescriptorChain, memory: GuestMemoryMap) -> Int? {
        do {
            guard try chain.list(writable: true, from: 0, count: chain.writableBytes, in: vectors, memory: memory) else { return 0 }
        } catch { return 0 }
        return readFrame { () throws(SystemError) in try vectors.receiveOnce(from: tap.descriptor.rawValue, subject: tapSubject) }
    }

    /// Reads a frame into `frame`: its length, 0 for one lost, nil when the tap has none.
    private func readScratch() -> Int? {
        readFrame { () throws(SystemError) in try tap.receive(into: &frame) }
    }

    /// One read from the tap: nil (and the tap watched again) when it has nothing, 0 when the
    /// frame was lost (counted), else its length.
    private func readFrame(_ read: () throws(SystemError) -> Int?) -> Int? {
        do {
            guard let length = try read() else {
                watchTap(true)
                return nil
            }
            guard length >= Int(TapDevice.headerSize) else {
                counters.rxDropped.add(1, ordering: .relaxed)
                return 0
            }
            return length
        } catch {
            counters.errors.add(1, ordering: .relaxed)
            return 0
        }
    }

    private enum Delivery { case delivered, waiting, dropped(returnedBuffers: Bool) }

    /// Copies the frame in `frame` into held receive chains, taking more as it needs them (only
    /// with mergeable buffers; without, one chain must hold it or it is dropped).
    private func deliverPending(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Delivery {
        let length = pendingFrameLength
        var room = 0
        for index in 0..<heldReceiveChains { room += receiveChains[index].writableBytes }
        if !mergeable, room < length {
            pendingFrameLength = 0
            counters.rxDropped.add(1, ordering: .relaxed)
            return .dropped(returnedBuffers: false)  // the buffer stays held for the next frame
        }
        while room < length {
            // The ring the driver set up, not the largest one: holding all of its buffers, the
            // device would wait for more that the driver has no room to post.
            guard heldReceiveChains < min(receiveChains.count, Int(queue.size)) else {
                // Even a full ring of the guest's buffers cannot hold it: drop it and give them back.
                pendingFrameLength = 0
                counters.rxDropped.add(1, ordering: .relaxed)
                for index in 0..<heldReceiveChains { queue.stageUsed(head: receiveChains[index].head, length: 0) }
                queue.publishUsed()
                heldReceiveChains = 0
                return .dropped(returnedBuffers: true)
            }
            if try queue.pop(into: &receiveChains[heldReceiveChains], memory: memory) {
                room += receiveChains[heldReceiveChains].writableBytes
                heldReceiveChains += 1
            } else if try !queue.armNotification() {
                return .waiting
            }
        }
        var done = 0, chains = 0
        while done < length {
            let chain = receiveChains[chains]
            let part = min(chain.writableBytes, length - done)
            // The buffers were checked to be guest RAM when the chains were taken.
            try? chain.copyToWritable(frame, from: done, count: part, at: 0, memory: memory)
            done += part
            chains += 1
        }
        pendingFrameLength = 0
        finishFrame(chains: chains, lengths: length, &queue, memory: memory)
        return .delivered
    }

    /// Sets num_buffers in the frame's header and returns its `chains` chains (the first
    /// `chains` held) to the driver in one publication, so it never sees part of a frame.
    private func finishFrame(chains: Int, lengths length: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) {
        scratch[0] = UInt8(truncatingIfNeeded: chains)
        scratch[1] = UInt8(truncatingIfNeeded: chains >> 8)
        try? receiveChains[0].copyToWritable(scratch, from: 0, count: 2, at: 10, memory: memory)
        var left = length
        for index in 0..<chains {
            let part = min(receiveChains[index].writableBytes, left)
            queue.stageUsed(head: receiveChains[index].head, length: UInt32(part))
            left -= part
        }
        // Counted before the driver can see it, so whoever reads the counters after the guest got a frame sees it counted.
        counters.rxPackets.add(1, ordering: .relaxed)
        counters.rxBytes.add(length - Int(TapDevice.headerSize), ordering: .relaxed)
        queue.publishUsed()
        // Chains past the ones used stay held, moved to the front.
        for index in chains..<heldReceiveChains { receiveChains.swapAt(index - chains, index) }
        heldReceiveChains -= chains
    }
}
