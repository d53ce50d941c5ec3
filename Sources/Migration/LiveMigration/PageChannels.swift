import GuestMemory
import LinuxSystem
import Paging
import Synchronization
import Transport

/// A pre-copy's pages over several connections (QEMU's multifd): a thread per page channel,
/// each copying, checking and sending pages with a `PageSender` of its own on its own
/// connection, so the per-byte work (staging copies, CRC32C, TLS sealing, the socket's copy)
/// runs on as many cores as there are channels. The migration thread only walks memory and
/// deals out `PageChunk`s. A pass ends on
/// every channel (each sends PASS_END) before the next begins, and the destination holds every
/// channel at each pass's end until all are there, so a page sent again in a later pass on
/// another channel never lands before its earlier copy.
final class PageChannels: PageStream {
    let regions: [GuestRegion]
    private let control: MigrationLink
    private let channels: [PageChannel]
    private var threads: [NamedThread] = []
    private var next = 0
    var progress: () -> Void = {}

    /// Starts a thread per link. On failure the threads already started are stopped.
    init(control: MigrationLink, links: [MigrationLink], regions: [GuestRegion]) throws {
        self.regions = regions
        self.control = control
        channels = links.enumerated().map { PageChannel(index: $0.offset, link: $0.element, regions: regions) }
        do {
            for channel in channels {
                threads.append(try NamedThread.spawn(name: "migrate-ch\(channel.index)", role: .migration) { channel.run() })
            }
        } catch {
            close()
            throw MigrationFailure("cannot start page channel \(threads.count)'s thread: \(error)")
        }
    }

    var pagesSent: UInt64 { channels.reduce(0) { $0 + $1.pagesSent.load(ordering: .relaxed) } }
    var zeroPagesSent: UInt64 { channels.reduce(0) { $0 + $1.zeroPagesSent.load(ordering: .relaxed) } }
    var bytesSent: UInt64 { control.bytesSent + channels.reduce(0) { $0 + $1.bytesSent.load(ordering: .relaxed) } }

    func endPass(_ pass: UInt32) throws {
        for channel in channels { try channel.put(.endPass(pass)) }
        for channel in channels { try channel.waitForEnd(of: pass) }
        progress()
        try control.sendPassEnd(pass: pass, pages: pagesSent)
    }

    /// Stops the threads and ends the channels' connections.
    func close() {
        for channel in channels {
            channel.stop()
            channel.link.close()
        }
        for thread in threads { thread.join() }
        threads = []
    }

    /// To the next channel with room, in turn; if none has room, waits for the next in turn.
    func send(_ chunk: PageChunk) throws {
        let job = PageChannel.Job.chunk(chunk)
        for offset in 0..<channels.count {
            let channel = channels[(next + offset) % channels.count]
            if try channel.put(job, waiting: false) {
                next = (next + offset + 1) % channels.count
                progress()
                return
            }
        }
        _ = try channels[next].put(job, waiting: true)
        next = (next + 1) % channels.count
        progress()
    }
}

/// One page channel of `PageChannels`: its connection, its sender (used only by its thread),
/// and a short queue of jobs from the migration thread.
///
/// `@unchecked Sendable`: `jobs`, `head`, `count`, `endedPass`, `failure` and `stopping` are
/// read and written only under `lock`; `sender` only by the channel's thread once it runs.
final class PageChannel: @unchecked Sendable {
    enum Job {
        case chunk(PageChunk)
        case endPass(UInt32)
    }

    let index: Int
    let link: MigrationLink
    let sender: PageSender
    let pagesSent = Atomic<UInt64>(0)
    let zeroPagesSent = Atomic<UInt64>(0)
    let bytesSent = Atomic<UInt64>(0)

    private static let capacity = 4
    private let lock = ConditionLock()
    private var jobs: [Job] = Array(repeating: .endPass(0), count: capacity)
    private var head = 0
    private var count = 0
    private var endedPass: UInt32 = 0
    private var failure: (any Error)?
    private var stopping = false

    init(index: Int, link: MigrationLink, regions: [GuestRegion]) {
        self.index = index
        self.link = link
        sender = PageSender(link: link, regions: regions)
        sender.progress = { [unowned self] in
            pagesSent.store(sender.pagesSent, ordering: .relaxed)
            zeroPagesSent.store(sender.zeroPagesSent, ordering: .relaxed)
            bytesSent.store(link.bytesSent, ordering: .relaxed)
        }
    }

    /// Migration thread: queues `job`; false if the queue is full and `waiting` is not set.
    /// Throws the channel's failure.
    @discardableResult
    func put(_ job: Job, waiting: Bool = true) throws -> Bool {
        try lock.withLock { () throws -> Bool in
            while true {
                if let failure { throw MigrationFailure("page channel \(index): \(failure)") }
                if count < Self.capacity { break }
                guard waiting else { return false }
                lock.wait()
            }
            jobs[(head + count) % Self.capacity] = job
            count += 1
            lock.broadcast()
            return true
        }
    }

    /// Migration thread: waits until this channel has sent PASS_END for `pass`.
    func waitForEnd(of pass: UInt32) throws {
        try lock.withLock { () throws in
            while endedPass < pass {
                if let failure { throw MigrationFailure("page channel \(index): \(failure)") }
                lock.wait()
            }
        }
    }

    /// Ends the thread once its queue is empty (or at once, if it failed).
    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
    }

    /// The channel's thread: takes jobs until stopped; the first error ends it and is kept for
    /// the migration thread (and its connection is ended, so the destination learns at once).
    func run() {
        while let job = take() {
            do {
                switch job {
                case .chunk(let chunk): try sender.send(chunk)
                case .endPass(let pass):
                    try sender.endPass(pass)
                    sender.progress()
                    lock.withLock {
                        endedPass = pass
                        lock.broadcast()
                    }
                }
            } catch {
                lock.withLock {
                    failure = error
                    lock.broadcast()
                }
                link.close()
                return
            }
        }
    }

    /// The next job, or nil once stopped with nothing left.
    private func take() -> Job? {
        lock.withLock {
            while count == 0 {
                if stopping { return nil }
                lock.wait()
            }
            let job = jobs[head]
            head = (head + 1) % Self.capacity
            count -= 1
            lock.broadcast()
            return job
        }
    }
}
