import GuestMemory

/// Loads a Linux bzImage's protected-mode kernel at 1 MiB (the 64-bit boot protocol).
enum BzImageLoader {
    static func load(_ bytes: [UInt8], path: String, into memory: GuestMemoryMap) throws(MachineError) -> LinuxSetupHeader {
        let header: LinuxSetupHeader
        do { header = try LinuxSetupHeader(bytes) } catch { throw .kernelFormat(path: path, reason: error.description) }
        let kernelOffset = (header.setupSectors + 1) * 512
        guard kernelOffset < bytes.count else { throw .kernelFormat(path: path, reason: "no kernel after the setup sectors") }
        let kernel = Array(bytes[kernelOffset...])
        let needed = max(UInt64(kernel.count), UInt64(header.initSize))
        do {
            _ = try memory.translate(X86Layout.kernelLoadAddress, length: needed)
            try memory.write(kernel, at: X86Layout.kernelLoadAddress)
        } catch {
            throw .doesNotFit(what: "kernel \(path)", sizeInBytes: needed, reason: "guest RAM above 1 MiB is too small")
        }
        return header
    }
}
