/// The registers page-table walks need from one vCPU.
package struct ProcessorState: Sendable, Equatable {
    package var id: Int
    package var cr0: UInt64
    package var cr3: UInt64
    package var cr4: UInt64
    package var efer: UInt64
    package var rip: UInt64

    package init(id: Int, cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, rip: UInt64 = 0) {
        self.id = id
        self.cr0 = cr0
        self.cr3 = cr3
        self.cr4 = cr4
        self.efer = efer
        self.rip = rip
    }

    /// Decodes CR0, CR2..CR4 and EFER from the raw bytes of `struct kvm_sregs` (KVM's stable ABI:
    /// 8 segments of 24 bytes, 2 descriptor tables of 16, then cr0, cr2, cr3, cr4, cr8, efer).
    package init?(id: Int, kvmSpecialRegisters bytes: [UInt8], kvmRegisters: [UInt8]? = nil) {
        guard bytes.count >= 272 else { return nil }
        func word(_ buffer: [UInt8], _ offset: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(buffer[offset + $1]) << (8 * UInt64($1)) }
        }
        // struct kvm_regs: rax..r15 (16 words), then rip.
        let rip = kvmRegisters.flatMap { $0.count >= 136 ? word($0, 128) : nil } ?? 0
        self.init(id: id, cr0: word(bytes, 224), cr3: word(bytes, 240), cr4: word(bytes, 248), efer: word(bytes, 264), rip: rip)
    }
}
