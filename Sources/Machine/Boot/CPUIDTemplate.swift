import KVM

/// Shapes KVM's supported CPUID into what each vCPU should see: its APIC ID and the CPU count.
enum CPUIDTemplate {
    static func entries(from supported: [CPUIDEntry], cpuID: UInt32, cpuCount: Int) -> [CPUIDEntry] {
        let count = UInt32(cpuCount)
        let countBits = UInt32(count <= 1 ? 0 : (32 - (count - 1).leadingZeroBitCount))
        return supported.map { original in
            var entry = original
            switch entry.function {
            case 1:
                // APIC ID, logical processor count, CLFLUSH size 64 bytes; HTT when more than one CPU.
                entry.ebx = (cpuID << 24) | (count << 16) | (8 << 8) | (entry.ebx & 0xff)
                entry.ecx |= 1 << 31                                     // running under a hypervisor
                if count > 1 { entry.edx |= 1 << 28 } else { entry.edx &= ~(1 << 28) }
            case 4:
                // Cores per package - 1 in EAX[31:26]; one thread per core.
                entry.eax = (entry.eax & 0x03ff_ffff) | ((count - 1) << 26)
            case 0xb:
                // x2APIC topology: level 0 = SMT (one thread), level 1 = core (all CPUs).
                switch entry.index {
                case 0: (entry.eax, entry.ebx, entry.ecx) = (0, 1, 0x100)
                case 1: (entry.eax, entry.ebx, entry.ecx) = (countBits, count, 0x201)
                default: (entry.eax, entry.ebx, entry.ecx) = (0, 0, entry.index)
                }
                entry.edx = cpuID
            default: break
            }
            return entry
        }
    }
}
