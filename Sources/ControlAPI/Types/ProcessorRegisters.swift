/// One vCPU's control registers, as GET /vm/vcpus lists them: what a tool needs to walk the
/// guest's page tables from outside (`engram mem read --virt`).
package struct ProcessorRegisters: Codable, Sendable, Equatable {
    package var id: Int
    package var cr0: UInt64
    package var cr3: UInt64
    package var cr4: UInt64
    package var efer: UInt64
    package var rip: UInt64

    package init(id: Int, cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, rip: UInt64) {
        self.id = id
        self.cr0 = cr0
        self.cr3 = cr3
        self.cr4 = cr4
        self.efer = efer
        self.rip = rip
    }
}

/// The body of GET /vm/vcpus.
package struct ProcessorRegisterList: Codable, Sendable, Equatable {
    package var vcpus: [ProcessorRegisters]

    package init(vcpus: [ProcessorRegisters]) { self.vcpus = vcpus }
}
