import Foundation
import Testing
@testable import Machine

/// Engram's ACPI tables are well formed (lengths, checksums, pointers) and say what they should,
/// as ACPICA's own disassembler (iasl, the compiler Linux's tables are checked with) reads them.
struct ACPITablesTests {
    static let iasl = ["/usr/bin/iasl", "/usr/sbin/iasl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The table at guest-physical `address` in an image built at `X86Layout.acpiTablesAddress`.
    private func table(_ image: ACPITables.Image, at address: UInt64) -> [UInt8] {
        let offset = Int(address - X86Layout.acpiTablesAddress.rawValue)
        let length = Int(ByteReader(bytes: image.tables).get(UInt32.self, at: offset + 4) ?? 0)
        return Array(image.tables[offset..<(offset + length)])
    }

    private func sumsToZero(_ bytes: [UInt8]) -> Bool { bytes.reduce(0, &+) == 0 }

    @Test func pointersLengthsAndChecksumsHold() throws {
        let image = ACPITables.build(cpuCount: 3)
        let rsdp = image.rsdp
        #expect(rsdp.count == 36 && String(decoding: rsdp[0..<8], as: UTF8.self) == "RSD PTR ")
        #expect(sumsToZero(Array(rsdp[0..<20])) && sumsToZero(rsdp))
        let reader = ByteReader(bytes: rsdp)
        let xsdt = table(image, at: try #require(reader.get(UInt64.self, at: 24)))
        #expect(String(decoding: xsdt[0..<4], as: UTF8.self) == "XSDT" && sumsToZero(xsdt))
        let entries = (0..<(xsdt.count - 36) / 8).map { ByteReader(bytes: xsdt).get(UInt64.self, at: 36 + 8 * $0)! }
        let tables = entries.map { table(image, at: $0) }
        #expect(tables.map { String(decoding: $0[0..<4], as: UTF8.self) } == ["FACP", "APIC"])
        #expect(tables.allSatisfy(sumsToZero))
        let fadt = ByteReader(bytes: tables[0])
        #expect(fadt.get(UInt32.self, at: 112)! & (1 << 20) != 0, "hardware-reduced")
        let dsdtAddress = try #require(fadt.get(UInt64.self, at: 140))
        #expect(UInt64(fadt.get(UInt32.self, at: 40)!) == dsdtAddress)
        let dsdt = table(image, at: dsdtAddress)
        #expect(String(decoding: dsdt[0..<4], as: UTF8.self) == "DSDT" && sumsToZero(dsdt))
        // MADT: three enabled local APICs, then the IOAPIC.
        let madt = tables[1]
        #expect(madt[44] == 0 && madt[52] == 0 && madt[60] == 0 && madt[68] == 1)
        #expect(X86Layout.acpiTablesAddress.rawValue + UInt64(image.tables.count) <= X86Layout.acpiTablesEnd)
        #expect(X86Layout.generationIDAddress.rawValue >= X86Layout.acpiTablesEnd)
    }

    @Test func packageLengthsEncodeAsTheSpecificationSays() {
        #expect(AML.packageLength(10) == [11])
        #expect(AML.packageLength(62) == [63])
        #expect(AML.packageLength(63) == [0x41, 0x04])           // 65 bytes with its two
        #expect(AML.packageLength(0xffd) == [0x4f, 0xff])         // 4095
        #expect(AML.packageLength(0xffe) == [0x81, 0x00, 0x01])   // 4097 needs three
    }

    @Test(.enabled(if: Self.iasl != nil, "needs iasl (acpica-tools)"))
    func acpicaReadsTheDSDTAsTheGenerationIDAndItsEventDevice() throws {
        let image = ACPITables.build(cpuCount: 2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("acpi-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let reader = ByteReader(bytes: image.rsdp)
        let xsdt = table(image, at: reader.get(UInt64.self, at: 24)!)
        let fadt = table(image, at: ByteReader(bytes: xsdt).get(UInt64.self, at: 36)!)
        let madt = table(image, at: ByteReader(bytes: xsdt).get(UInt64.self, at: 44)!)
        let dsdt = table(image, at: ByteReader(bytes: fadt).get(UInt64.self, at: 140)!)
        var text: [String: String] = [:]
        for (name, bytes) in [("dsdt", dsdt), ("facp", fadt), ("apic", madt), ("xsdt", xsdt)] {
            let file = directory.appendingPathComponent("\(name).dat")
            try Data(bytes).write(to: file)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.iasl!)
            process.arguments = ["-d", file.path]
            process.currentDirectoryURL = directory
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "iasl -d \(name): \(log)")
            text[name] = try String(contentsOf: directory.appendingPathComponent("\(name).dsl"), encoding: .utf8)
            #expect(!(text[name]!.contains("Incorrect checksum") || text[name]!.contains("Invalid")), "\(text[name]!)")
        }
        let source = try #require(text["dsdt"])
        #expect(source.contains("Device (VGEN)") && source.contains("\"VM_Gen_Counter\""), "\(source)")
        #expect(source.contains("Name (ADDR, Package (0x02)") && source.contains("0x000EF000"), "\(source)")
        #expect(source.contains("Device (GED)") && source.contains("\"ACPI0013\""), "\(source)")
        #expect(source.contains("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )") && source.contains("0x00000003,"), "\(source)")
        #expect(source.contains("Notify (\\_SB.VGEN, 0x80)"), "\(source)")
        #expect(text["facp"]!.contains("Hardware Reduced (V5) : 1"), "\(text["facp"]!)")
        #expect(text["apic"]!.components(separatedBy: "Processor Enabled : 1").count == 3, "\(text["apic"]!)")
    }
}
