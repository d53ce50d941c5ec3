import LinuxSystem
import GuestMemory

/// Loads a Linux bzImage for the 64-bit boot protocol.
///
/// By default the protected-mode kernel goes to 1 MiB and decompresses itself, as with any
/// boot loader. With `decompressOnHost` Engram unpacks the xz payload (an ELF vmlinux) itself
/// and enters it directly, as Firecracker does with vmlinux: far faster where guest kernel code
/// is emulated, at the price of the decompressor's physical KASLR.
enum BzImageLoader {
    static let payloadSizeLimit = 512 << 20

    static func load(_ bytes: [UInt8], path: String, into memory: GuestMemoryMap,
                     decompressOnHost: Bool) throws(MachineError) -> (LinuxSetupHeader, KernelEntry) {
        let header: LinuxSetupHeader
        do { header = try LinuxSetupHeader(bytes) } catch { throw .kernelFormat(path: path, reason: error.description) }
        let kernelOffset = (header.setupSectors + 1) * 512
        guard kernelOffset < bytes.count else { throw .kernelFormat(path: path, reason: "no kernel after the setup sectors") }
        let kernel = Array(bytes[kernelOffset...])
        if decompressOnHost {
            let vmlinux = try payload(of: kernel, header: header, path: path)
            let loaded = try ELFKernelLoader.loadSegments(vmlinux, path: path + " (decompressed payload)", into: memory)
            return (header, .linux64(address: loaded.entryPoint))
        }
        let needed = max(UInt64(kernel.count), UInt64(header.initSize))
        do {
            _ = try memory.translate(X86Layout.kernelLoadAddress, length: needed)
            try memory.write(kernel, at: X86Layout.kernelLoadAddress)
        } catch {
            throw .doesNotFit(what: "kernel \(path)", sizeInBytes: needed, reason: "guest RAM above 1 MiB is too small")
        }
        return (header, .linux64(address: X86Layout.kernelLoadAddress.rawValue + 0x200))
    }

    /// The decompressed payload: an xz stream whose last four bytes give the unpacked size.
    private static func payload(of kernel: [UInt8], header: LinuxSetupHeader, path: String) throws(MachineError) -> [UInt8] {
        let offset = Int(header.payloadOffset), length = Int(header.payloadLength)
        guard length > 4, offset >= 0, offset <= kernel.count, length <= kernel.count - offset else {
            throw .kernelFormat(path: path, reason: "payload (offset \(offset), length \(length)) lies outside the image")
        }
        let compressed = Array(kernel[offset..<(offset + length)])
        guard compressed.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) else {
            throw .kernelFormat(path: path, reason: "--decompress-on-host supports xz payloads; this one is not xz")
        }
        let size = Int(ByteReader(bytes: compressed).get(UInt32.self, at: length - 4) ?? 0)
        guard let vmlinux = XZDecompressor.decompress(compressed, expectedSize: size, limit: payloadSizeLimit) else {
            throw .kernelFormat(path: path, reason: "the xz payload does not decompress to its stated \(size) bytes")
        }
        return vmlinux
    }
}
