extension OwnedFileDescriptor {
    /// Exactly `count` bytes from the file's current position; an error if it ends sooner.
    package func readExactly(_ count: Int) throws(SystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var buffer = [UInt8](repeating: 0, count: min(count, 1 << 20))
        while filled < count {
            let read = try descriptor.read(into: &buffer)
            guard read > 0 else { throw .failed("read", on: "descriptor \(rawValue)", .ioError) }
            let take = min(read, count - filled)
            bytes.replaceSubrange(filled..<filled + take, with: buffer[0..<take])
            filled += take
        }
        return bytes
    }

    /// A small file's whole contents, read to its end: /proc and cgroup files report no size to
    /// read up to.
    package static func readWhole(_ path: String) throws(SystemError) -> [UInt8] {
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try file.descriptor.read(into: &buffer)
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }
}
