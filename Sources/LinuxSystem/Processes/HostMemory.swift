/// The host's memory, as /proc/meminfo reports it.
package enum HostMemory {
    /// MemAvailable in bytes (what can be allocated without swapping), or nil if unreadable.
    package static func availableBytes() -> UInt64? {
        guard let bytes = try? OwnedFileDescriptor.readToEnd("/proc/meminfo") else { return nil }
        return availableBytes(inMeminfo: String(decoding: bytes, as: UTF8.self))
    }

    /// The MemAvailable line of `text` ("MemAvailable:   123456 kB") in bytes.
    package static func availableBytes(inMeminfo text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, fields[2] == "kB", let kibibytes = UInt64(fields[1]) else { return nil }
            let (bytes, overflow) = kibibytes.multipliedReportingOverflow(by: 1024)
            return overflow ? nil : bytes
        }
        return nil
    }
}
