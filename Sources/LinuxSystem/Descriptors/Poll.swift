import Glibc

/// poll(2) over a few descriptors, retried when a signal interrupts it.
package enum Poll {
    /// Waits until one of `entries` has an event or `milliseconds` pass (-1: forever); returns
    /// the number ready (0 on time-out). The entries' `revents` tell which.
    package static func wait(_ entries: inout [pollfd], milliseconds: CInt) throws(SystemError) -> Int {
        while true {
            // SAFETY: poll reads and writes exactly the array's entries.
            let ready = unsafe entries.withUnsafeMutableBufferPointer { unsafe poll($0.baseAddress, nfds_t($0.count), milliseconds) }
            if ready >= 0 { return Int(ready) }
            if errno != EINTR { throw .last("poll", on: "\(entries.count) descriptors") }
        }
    }

    /// True if `descriptor` becomes readable (or hangs up) within `milliseconds` (-1: forever).
    package static func isReadable(_ descriptor: CInt, milliseconds: CInt) -> Bool {
        var entries = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
        return ((try? wait(&entries, milliseconds: milliseconds)) ?? 0) == 1
    }

    /// An entry waiting for input on `descriptor`.
    package static func input(_ descriptor: CInt) -> pollfd { pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0) }
}
