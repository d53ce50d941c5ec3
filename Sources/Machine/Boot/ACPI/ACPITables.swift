/// The ACPI tables Engram gives an x86 guest, as Firecracker and QEMU's microvm do: RSDP →
/// XSDT → FADT (hardware-reduced: no PM timer, no SCI, no legacy ACPI ports) with its DSDT,
/// and a MADT that says what the MP table says (CPUs, the IOAPIC, ISA lines mapped 1:1).
///
/// The DSDT holds the VM generation ID device (Microsoft's VMGenID, which Linux, Windows,
/// Firecracker and QEMU share: `_CID "VM_Gen_Counter"`, `ADDR` the 16 bytes' address) and the
/// generic event device (`ACPI0013`) whose interrupt makes the guest re-read the ID. Virtio
/// devices stay on the command line, where the test kernel and Linux both find them.
enum ACPITables {
    /// The RSDP for `X86Layout.acpiRSDPAddress` and the tables for `X86Layout.acpiTablesAddress`.
    struct Image: Equatable {
        var rsdp: [UInt8]
        var tables: [UInt8]
    }

    static let oemID = Array("ENGRAM".utf8)
    static let oemTableID = Array("ENGRAMVM".utf8)

    static func build(cpuCount: Int) -> Image {
        var tables: [UInt8] = []
        let base = X86Layout.acpiTablesAddress.rawValue
        /// Appends a table 8-byte aligned; returns its guest-physical address.
        func place(_ table: [UInt8]) -> UInt64 {
            while tables.count % 8 != 0 { tables.append(0) }
            let address = base + UInt64(tables.count)
            tables += table
            return address
        }
        let dsdt = place(differentiatedSystemDescription())
        let fadt = place(fixedDescription(dsdt: dsdt))
        let madt = place(interruptControllers(cpuCount: cpuCount))
        let xsdt = place(extendedSystemDescription(entries: [fadt, madt]))
        precondition(base + UInt64(tables.count) <= X86Layout.acpiTablesEnd, "ACPI tables overrun their area")
        return Image(rsdp: rootPointer(xsdt: xsdt), tables: tables)
    }

    /// The DSDT: `\_SB.VGEN` (the generation ID) and `\_SB.GED` (its change notification).
    static func differentiatedSystemDescription() -> [UInt8] {
        let address = X86Layout.generationIDAddress.rawValue
        let gsi = X86Layout.generationIDNotifyGSI
        let generationID = AML.device("VGEN", [
            AML.name("_HID", AML.string("ENGRVGID")),
            AML.name("_CID", AML.string("VM_Gen_Counter")),
            AML.name("_DDN", AML.string("VM_Gen_Counter")),
            AML.name("ADDR", AML.package([AML.dword(UInt32(truncatingIfNeeded: address)), AML.dword(UInt32(address >> 32))])),
        ])
        let eventDevice = AML.device("GED", [
            AML.name("_HID", AML.string("ACPI0013")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.interruptResource(gsi: gsi)),
            AML.method("_EVT", arguments: 1, [
                AML.ifThen(AML.equal(AML.argument(0), AML.integer(UInt64(gsi))), [
                    AML.notify(AML.namePath(["_SB", "VGEN"], absolute: true), 0x80),
                ]),
            ]),
        ])
        let body = AML.scope(AML.namePath(["_SB"], absolute: true), [generationID, eventDevice])
        return table("DSDT", revision: 2, body: body)
    }

    /// The FADT, revision 6: hardware-reduced ACPI, an 8042 present (reset and keyboard), no
    /// VGA, no MSI, no CMOS clock.
    static func fixedDescription(dsdt: UInt64) -> [UInt8] {
        var fields = ByteWriter(count: 276 - 36)
        func at(_ offset: Int) -> Int { offset - 36 }
        fields.put(UInt32(truncatingIfNeeded: dsdt), at: at(40))         // DSDT
        let iapcBootArchitecture: UInt16 = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5  // 8042, no VGA, no MSI, no CMOS RTC
        fields.put(iapcBootArchitecture, at: at(109))
        let flags: UInt32 = 1 << 4 | 1 << 5 | 1 << 20                     // power and sleep buttons absent, HW_REDUCED_ACPI
        fields.put(flags, at: at(112))
        fields.put(UInt8(4), at: at(131))                                  // FADT minor version
        fields.put(dsdt, at: at(140))                                      // X_DSDT
        fields.put(Array("ENGRAM  ".utf8), at: at(268))                   // hypervisor vendor identity
        return table("FACP", revision: 6, body: fields.bytes)
    }

    /// The MADT: one enabled local APIC per vCPU, the IOAPIC at GSI 0, NMI on LINT1.
    static func interruptControllers(cpuCount: Int) -> [UInt8] {
        var body = ByteWriter(count: 8)
        body.put(X86Layout.localAPICAddress, at: 0)
        body.put(UInt32(1), at: 4)                                        // PCAT_COMPAT: there are 8259s
        var entries: [UInt8] = []
        for cpu in 0..<cpuCount {
            var processor = ByteWriter(count: 8)
            processor.put(UInt8(0), at: 0)
            processor.put(UInt8(8), at: 1)
            processor.put(UInt8(cpu), at: 2)                              // ACPI processor UID
            processor.put(UInt8(cpu), at: 3)                              // APIC ID
            processor.put(UInt32(1), at: 4)                               // enabled
            entries += processor.bytes
        }
        var ioapic = ByteWriter(count: 12)
        ioapic.put(UInt8(1), at: 0)
        ioapic.put(UInt8(12), at: 1)
        ioapic.put(MPTable.ioAPICID, at: 2)
        ioapic.put(X86Layout.ioAPICAddress, at: 4)
        entries += ioapic.bytes
        var nmi = ByteWriter(count: 6)
        nmi.put(UInt8(4), at: 0)
        nmi.put(UInt8(6), at: 1)
        nmi.put(UInt8(0xff), at: 2)                                       // every processor
        nmi.put(UInt8(1), at: 5)                                          // LINT1
        entries += nmi.bytes
        return table("APIC", revision: 5, body: body.bytes + entries)
    }

    static func extendedSystemDescription(entries: [UInt64]) -> [UInt8] {
        var body = ByteWriter(count: 8 * entries.count)
        for (index, address) in entries.enumerated() { body.put(address, at: 8 * index) }
        return table("XSDT", revision: 1, body: body.bytes)
    }

    /// The RSDP, revision 2 (ACPI 2.0+): only the XSDT.
    static func rootPointer(xsdt: UInt64) -> [UInt8] {
        var pointer = ByteWriter(count: 36)
        pointer.put(Array("RSD PTR ".utf8), at: 0)
        pointer.put(oemID, at: 9)
        pointer.put(UInt8(2), at: 15)
        pointer.put(UInt32(36), at: 20)
        pointer.put(xsdt, at: 24)
        var bytes = pointer.bytes
        bytes[8] = MPTable.checksum(Array(bytes[0..<20]))
        bytes[32] = MPTable.checksum(bytes)
        return bytes
    }

    /// A system description table: the 36-byte header, `body`, and the checksum over both.
    static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var header = ByteWriter(count: 36)
        header.put(Array(signature.utf8), at: 0)
        header.put(UInt32(36 + body.count), at: 4)
        header.put(revision, at: 8)
        header.put(oemID, at: 10)
        header.put(oemTableID, at: 16)
        header.put(UInt32(1), at: 24)                                     // OEM revision
        header.put(Array("ENGR".utf8), at: 28)                            // creator ID
        header.put(UInt32(1), at: 32)                                     // creator revision
        var bytes = header.bytes + body
        bytes[9] = MPTable.checksum(bytes)
        return bytes
    }
}
