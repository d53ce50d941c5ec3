import GuestMemory
import KVM

/// Lays out everything a kernel finds at entry: kernel, initrd, command line, memory map, boot tables.
enum BootImageWriter {
    /// Loads the kernel and its boot data into `memory`; returns the boot vCPU's entry.
    static func write(_ configuration: MachineConfiguration, into memory: GuestMemoryMap,
                      ram: [GuestMapping]) throws(MachineError) -> KernelEntry {
        let (entry, linuxHeader) = try KernelImage.load(path: configuration.kernelPath, into: memory, decompressOnHost: configuration.decompressOnHost)
        let announced = VirtioLayout(configuration).commandLineTokens
        let given = configuration.commandLine ?? defaultCommandLine(for: entry)
        // The devices go first: the test kernel reads options before " -- ", Linux anywhere.
        let commandLine = announced.isEmpty ? given : (announced + [given]).joined(separator: " ")
        let maximum = linuxHeader.map { Int($0.commandLineSizeMaximum) } ?? X86Layout.commandLineMaximumBytes - 1
        let commandLineBytes = Array(commandLine.utf8)
        guard commandLineBytes.count <= min(maximum, X86Layout.commandLineMaximumBytes - 1) else {
            throw .commandLineTooLong(length: commandLineBytes.count, maximum: min(maximum, X86Layout.commandLineMaximumBytes - 1))
        }
        let initrd = try loadInitrd(configuration.initrdPath, ram: ram, below: linuxHeader.map { UInt64($0.initrdAddressMaximum) }, into: memory)
        let memoryMap = E820Map.entries(for: ram)
        do {
            try memory.write(commandLineBytes + [0], at: X86Layout.commandLineAddress)
            try memory.write(BootGDT.bytes(longMode: linuxHeader != nil), at: X86Layout.gdtAddress)
            try memory.write(MPTable.bytes(cpuCount: configuration.cpuCount), at: X86Layout.mpTableAddress)
            var rsdp: UInt64? = nil
            if let generationID = configuration.generationID {
                let acpi = ACPITables.build(cpuCount: configuration.cpuCount)
                try memory.write(acpi.rsdp, at: X86Layout.acpiRSDPAddress)
                try memory.write(acpi.tables, at: X86Layout.acpiTablesAddress)
                try memory.write(GenerationIDDevice.freshID(), at: GuestAddress(generationID.address))
                rsdp = X86Layout.acpiRSDPAddress.rawValue
            }
            if let linuxHeader {
                try memory.write(IdentityPageTables.bytes(), at: X86Layout.pageTablesAddress)
                let params = LinuxBootParams.build(header: linuxHeader, commandLineLength: commandLineBytes.count,
                                                   initrd: initrd, memoryMap: memoryMap, framebuffer: configuration.display?.geometry, rsdp: rsdp)
                try memory.write(params, at: X86Layout.bootParamsAddress)
            } else {
                let pvh = PVHStartInfo.build(memoryMap: memoryMap, initrd: initrd, framebuffer: configuration.display?.geometry, rsdp: rsdp)
                try memory.write(pvh.info, at: X86Layout.pvhStartInfoAddress)
                try memory.write(pvh.memoryMap, at: X86Layout.pvhMemoryMapAddress)
                try memory.write(pvh.modules, at: X86Layout.pvhModuleListAddress)
                if !pvh.moduleCommandLines.isEmpty { try memory.write(pvh.moduleCommandLines, at: X86Layout.pvhModuleCommandLineAddress) }
            }
        } catch {
            throw .doesNotFit(what: "boot data", sizeInBytes: 0x100000, reason: "guest RAM must cover the first MiB")
        }
        return entry
    }

    static func defaultCommandLine(for entry: KernelEntry) -> String {
        switch entry {
        case .pvh: "console=ttyS0"
        case .linux64: "console=ttyS0 earlyprintk=serial,ttyS0 reboot=k panic=1"
        }
    }

    /// Places the initrd as high in low RAM as allowed (Linux's initrd_addr_max), page-aligned.
    private static func loadInitrd(_ path: String?, ram: [GuestMapping], below limit: UInt64?,
                                   into memory: GuestMemoryMap) throws(MachineError) -> (address: UInt64, size: UInt64)? {
        guard let path else { return nil }
        let bytes: [UInt8]
        switch FileBytes.read(path: path) {
        case .success(let data): bytes = data
        case .failure(let errno): throw .initrdUnreadable(path: path, errno)
        }
        let lowEnd = ram[0].endAddress.rawValue
        let top = min(lowEnd, (limit ?? UInt64(UInt32.max)) &+ 1)
        let size = UInt64(bytes.count)
        let floor: UInt64 = 16 << 20  // leave the kernel's first 16 MiB alone
        guard top > size + floor else {
            throw .doesNotFit(what: "initrd \(path)", sizeInBytes: size, reason: "guest RAM below 4 GiB is too small")
        }
        let address = (top - size) & ~UInt64(0xfff)
        do { try memory.write(bytes, at: GuestAddress(address)) } catch {
            throw .doesNotFit(what: "initrd \(path)", sizeInBytes: size, reason: "outside guest RAM")
        }
        return (address, size)
    }
}
