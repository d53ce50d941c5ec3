import LinuxSystem

/// The thread that serves every virtio device's queues, so vCPU threads only ever take short
/// register exits. It waits in epoll on each queue's notifier (signalled by KVM's ioeventfd when
/// the guest writes QueueNotify) and on a stop notifier; a device held back by a rate limit is
/// served again when its deadline passes.
package final class VirtioIOThread: Sendable {
    private let devices: [VirtioMMIODevice]
    private let epoll: Epoll
    private let stopRequest: EventNotifier
    private let thread: Locked<NamedThread?> = Locked(nil)
    private static let stopToken = UInt64.max

    package init(devices: [VirtioMMIODevice]) throws(SystemError) {
        self.devices = devices
        epoll = try Epoll()
        stopRequest = try EventNotifier()
        try epoll.add(stopRequest.rawValue, interest: .readable, token: Self.stopToken)
        for (deviceIndex, device) in devices.enumerated() {
            for (queueIndex, notifier) in device.queueNotifiers.enumerated() {
                try epoll.add(notifier.rawValue, interest: .readable, token: UInt64(deviceIndex) << 16 | UInt64(queueIndex))
            }
            device.attach(VirtioIOContext(epoll: epoll, deviceIndex: deviceIndex, queueNotifiers: device.queueNotifiers))
        }
    }

    /// Starts serving. Every queue is looked at once first: the guest may have made requests
    /// available while the thread was stopped (a pause, or before a snapshot was taken).
    package func start() throws(SystemError) {
        guard thread.withLock({ $0 == nil }) else { return }
        for device in devices { for notifier in device.queueNotifiers { notifier.signal() } }
        let spawned = try NamedThread.spawn(name: "virtio-io", role: .deviceIO) { [self] in run() }
        thread.withLock { $0 = spawned }
    }

    /// Stops the thread and waits until it has finished the batch it was serving: afterwards no
    /// request is in flight and no queue changes until `start` again.
    package func stop() {
        guard let running = thread.withLock({ value in defer { value = nil }; return value }) else { return }
        stopRequest.signal()
        running.join()
        stopRequest.drain()
    }

    private func run() {
        var events = Epoll.Events()
        while true {
            do { try epoll.wait(into: &events, milliseconds: waitMilliseconds()) } catch { return }
            for index in 0..<events.count {
                let token = events[index].token
                if token == Self.stopToken { return }
                if token & VirtioIOContext.hostEventFlag != 0 {
                    devices[Int(token >> 32 & 0xffff)].serveHostEvent(token: UInt32(truncatingIfNeeded: token), events[index])
                    continue
                }
                let device = Int(token >> 16), queue = Int(token & 0xffff)
                devices[device].serveQueue(queue)
            }
            serveThrottledDevices()
        }
    }

    /// Until the earliest rate-limit or timer deadline (rounded up), or forever when none is pending.
    private func waitMilliseconds() -> CInt {
        var earliest = UInt64.max
        for device in devices {
            if let until = device.throttledUntil { earliest = min(earliest, until) }
            if let until = device.timerDeadline { earliest = min(earliest, until) }
        }
        guard earliest != .max else { return -1 }
        let now = MonotonicClock.nanoseconds()
        guard earliest > now else { return 0 }
        return CInt(min((earliest - now + 999_999) / 1_000_000, 60_000))
    }

    private func serveThrottledDevices() {
        let now = MonotonicClock.nanoseconds()
        for device in devices {
            let throttled = device.throttledUntil.map { $0 <= now } ?? false
            let timer = device.timerDeadline.map { $0 <= now } ?? false
            guard throttled || timer else { continue }
            for queue in device.queueNotifiers.indices { device.serveQueue(queue) }
        }
    }
}
