import CLinux

/// One CPUID leaf/subleaf as KVM reports and accepts it (struct kvm_cpuid_entry2).
package struct CPUIDEntry: Sendable, Equatable, Codable {
    package var function: UInt32
    package var index: UInt32
    package var flags: UInt32
    package var eax: UInt32
    package var ebx: UInt32
    package var ecx: UInt32
    package var edx: UInt32

    package init(function: UInt32, index: UInt32, flags: UInt32, eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }

    init(_ entry: kvm_cpuid_entry2) {
        self.init(function: entry.function, index: entry.index, flags: entry.flags,
                  eax: entry.eax, ebx: entry.ebx, ecx: entry.ecx, edx: entry.edx)
    }

    var kernelEntry: kvm_cpuid_entry2 {
        var entry = kvm_cpuid_entry2()
        entry.function = function
        entry.index = index
        entry.flags = flags
        entry.eax = eax
        entry.ebx = ebx
        entry.ecx = ecx
        entry.edx = edx
        return entry
    }
}
