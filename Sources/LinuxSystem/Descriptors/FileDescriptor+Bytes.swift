import SystemPackage

extension FileDescriptor {
    /// Reads what is available, up to the array's size, into `buffer` from its start; returns
    /// the count (0 at end of input). Interrupted reads are retried.
    package func read(into buffer: inout [UInt8]) throws(SystemError) -> Int {
        do {
            // SAFETY: read writes at most the array's size into its own storage, during the call.
            return try unsafe buffer.withUnsafeMutableBytes { try unsafe read(into: $0) }
        } catch { throw SystemError("read", on: "descriptor \(rawValue)", error as? Errno ?? .ioError) }
    }

    /// Writes one byte, retrying when a signal interrupts the call: on a vCPU thread, with no
    /// buffering and no allocation.
    package func writeByte(_ byte: UInt8) {
        var value = byte
        // SAFETY: write reads the one byte of a local.
        _ = try? unsafe withUnsafeBytes(of: &value) { try unsafe write($0) }
    }

    /// Writes `text` and a newline in one call (a diagnostic on standard error); errors are ignored.
    package func writeLine(_ text: String) {
        _ = try? writeAll(Array((text + "\n").utf8))
    }
}
