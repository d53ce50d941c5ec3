extension OwnedFileDescriptor {
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
