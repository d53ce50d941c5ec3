/// An Intel MultiProcessor table: how Linux without ACPI finds its CPUs, IOAPIC and ISA interrupts.
enum MPTable {
    static let ioAPICID: UInt8 = 0xfe

    /// The floating pointer followed by the configuration table, for `X86Layout.mpTableAddress`.
    static func bytes(cpuCount: Int) -> [UInt8] {
        var entries: [[UInt8]] = []
        for cpu in 0..<cpuCount {
            var processor = ByteWriter(count: 20)
            processor.put(UInt8(0), at: 0)                           // processor entry
            processor.put(UInt8(cpu), at: 1)                         // local APIC ID
            processor.put(UInt8(0x14), at: 2)                        // local APIC version
            processor.put(UInt8(cpu == 0 ? 0x3 : 0x1), at: 3)        // enabled, bootstrap processor
            processor.put(UInt32(0x600), at: 4)                      // CPU signature
            processor.put(UInt32(0x201), at: 8)                      // features: FPU, APIC
            entries.append(processor.bytes)
        }
        var bus = ByteWriter(count: 8)
        bus.put(UInt8(1), at: 0)
        bus.put(Array("ISA   ".utf8), at: 2)
        entries.append(bus.bytes)
        var ioapic = ByteWriter(count: 8)
        ioapic.put(UInt8(2), at: 0)
        ioapic.put(ioAPICID, at: 1)
        ioapic.put(UInt8(0x11), at: 2)
        ioapic.put(UInt8(1), at: 3)                                  // enabled
        ioapic.put(X86Layout.ioAPICAddress, at: 4)
        entries.append(ioapic.bytes)
        // IRQ n → IOAPIC pin n, as KVM routes them; 16–23 for virtio devices (as Firecracker lists them).
        for irq in 0..<24 {
            var interrupt = ByteWriter(count: 8)
            interrupt.put(UInt8(3), at: 0)
            interrupt.put(UInt8(irq == 0 ? 0 : 0), at: 1)            // INT
            interrupt.put(UInt8(irq), at: 5)
            interrupt.put(ioAPICID, at: 6)
            interrupt.put(UInt8(irq), at: 7)
            entries.append(interrupt.bytes)
        }
        for (type, pin) in [(UInt8(3), UInt8(0)), (UInt8(1), UInt8(1))] {  // ExtINT on LINT0, NMI on LINT1
            var local = ByteWriter(count: 8)
            local.put(UInt8(4), at: 0)
            local.put(type, at: 1)
            local.put(UInt8(0xff), at: 6)                            // all local APICs
            local.put(pin, at: 7)
            entries.append(local.bytes)
        }
        let body = entries.flatMap { $0 }
        var header = ByteWriter(count: 44)
        header.put(Array("PCMP".utf8), at: 0)
        header.put(UInt16(44 + body.count), at: 4)
        header.put(UInt8(4), at: 6)                                  // spec revision 1.4
        header.put(Array("ENGRAM  ".utf8), at: 8)
        header.put(Array("KVM VM      ".utf8), at: 16)
        header.put(UInt16(entries.count), at: 34)
        header.put(X86Layout.localAPICAddress, at: 36)
        var table = header.bytes + body
        table[7] = checksum(table)

        var floating = ByteWriter(count: 16)
        floating.put(Array("_MP_".utf8), at: 0)
        floating.put(UInt32(X86Layout.mpTableAddress.rawValue + 16), at: 4)
        floating.put(UInt8(1), at: 8)                                // length in 16-byte units
        floating.put(UInt8(4), at: 9)
        var pointer = floating.bytes
        pointer[10] = checksum(pointer)
        return pointer + table
    }

    /// The byte that makes all bytes sum to zero.
    static func checksum(_ bytes: [UInt8]) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}
