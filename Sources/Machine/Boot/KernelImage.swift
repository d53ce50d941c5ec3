import GuestMemory

/// A kernel loaded into guest memory, and how to enter it.
enum KernelEntry: Equatable {
    /// PVH: 32-bit protected mode, paging off, %ebx = start_info, at `address`.
    case pvh(address: UInt32)
    /// Linux 64-bit boot protocol: long mode, %rsi = boot_params, at `address`.
    case linux64(address: UInt64)
}

/// The kinds of kernel file Engram boots, told apart by their magic numbers.
enum KernelImage {
    /// Loads `path` into `memory` and returns how to enter it.
    static func load(path: String, into memory: GuestMemoryMap, decompressOnHost: Bool = false) throws(MachineError) -> (KernelEntry, LinuxSetupHeader?) {
        let bytes: [UInt8]
        switch FileBytes.read(path: path) {
        case .success(let data): bytes = data
        case .failure(let errno): throw .kernelUnreadable(path: path, errno)
        }
        if bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) {
            return (try ELFKernelLoader.load(bytes, path: path, into: memory), nil)
        }
        if ByteReader(bytes: bytes).get(UInt32.self, at: LinuxSetupHeader.magicOffset) == LinuxSetupHeader.magic {
            let (header, entry) = try BzImageLoader.load(bytes, path: path, into: memory, decompressOnHost: decompressOnHost)
            return (entry, header)
        }
        throw .kernelFormat(path: path, reason: "neither an ELF kernel with a PVH note nor a Linux bzImage")
    }
}
