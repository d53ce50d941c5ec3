import LinuxSystem
import Synchronization

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
    /// Times the thread woke (an event or a deadline): what a test reads to see it idle.
    package let wakeups = Atomic<UInt64>(0)

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
        var stale = [StaleDeadlines](repeating: StaleDeadlines(), count: devices.count)
        while true {
            do { try epoll.wait(into: &events, milliseconds: waitMilliseconds(stale)) } catch { return }
            wakeups.add(1, ordering: .relaxed)
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
            serveThrottledDevices(&stale)
        }
    }

    /// A device's deadlines that serving its queues left where they were, already past: the
    /// queue that would clear them is gone (the driver reset the device or took the queue down
    /// while a rate limit or timer was pending). They are ignored until they change; waiting on
    /// them would spin the thread.
    private struct StaleDeadlines {
        var throttled: UInt64?
        var timer: UInt64?
    }

    /// A device's rate-limit and timer deadlines, less the stale ones.
    private func deadlines(_ index: Int, _ stale: [StaleDeadlines]) -> (throttled: UInt64?, timer: UInt64?) {
        let throttled = devices[index].throttledUntil, timer = devices[index].timerDeadline
        return (throttled == stale[index].throttled ? nil : throttled, timer == stale[index].timer ? nil : timer)
    }

    /// Until the earliest rate-limit or timer deadline (rounded up), or forever when none is pending.
    private func waitMilliseconds(_ stale: [StaleDeadlines]) -> CInt {
        var earliest = UInt64.max
        for index in devices.indices {
            let (throttled, timer) = deadlines(index, stale)
            if let throttled { earliest = min(earliest, throttled) }
            if let timer { earliest = min(earliest, timer) }
        }
        guard earliest != .max else { return -1 }
        let now = MonotonicClock.nanoseconds()
        guard earliest > now else { return 0 }
        return CInt(min((earliest - now + 999_999) / 1_000_000, 60_000))
    }

    private func serveThrottledDevices(_ stale: inout [StaleDeadlines]) {
        let now = MonotonicClock.nanoseconds()
        for index in devices.indices {
            let (throttled, timer) = deadlines(index, stale)
            guard throttled.map({ $0 <= now }) ?? false || timer.map({ $0 <= now }) ?? false else { continue }
            let device = devices[index]
            for queue in device.queueNotifiers.indices { device.serveQueue(queue) }
            if let throttled, throttled <= now, device.throttledUntil == throttled { stale[index].throttled = throttled }
            if let timer, timer <= now, device.timerDeadline == timer { stale[index].timer = timer }
        }
    }
}
