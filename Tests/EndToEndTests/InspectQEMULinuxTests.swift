import Foundation
import Testing
import TestSupport

/// `engram mem` on a real Linux guest's memory, in every form QEMU hands it out: the RAM file of a
/// running guest, a migration stream saved to a file, a dump-guest-memory ELF, and Engram's own
/// ELF export read by volatility3.
///
/// QEMU's monitor is the reference: what `engram mem read` shows must be what HMP `x`/`xp` show,
/// and what `engram mem search` finds at an address must be there according to `xp`. The guest
/// is booted once for the suite (a TCG boot takes seconds) and killed when the suite ends.
@Suite(.enabled(if: QEMULinuxGuest.available, "needs qemu-system-x86_64 and guest/linux/build (guest/linux/build-image.sh)"),
       .serialized, .bootedLinuxGuest)
struct InspectQEMULinuxTests {
    /// What the guest computed in its shell; the typed command holds only its pieces.
    static let pattern = "ENGRAM-INSPECT-PATTERN-42"
    static let bannerPrefix = "Linux version 6."

    var fixture: LinuxGuestFixture {
        get throws { try #require(LinuxGuestFixture.current, "the .bootedLinuxGuest scope did not run") }
    }

    /// The premise of every other test, checked without Engram: the RAM file is guest-physical
    /// memory (pc machine, 256 MiB: file offset = address), and it holds what QEMU's monitor shows.
    @Test func ramFileHoldsWhatTheMonitorShows() throws {
        let fixture = try fixture, guest = fixture.guest
        let physical = try guest.physicalAddress(ofVirtual: fixture.bannerAddress)
        let expected = try guest.readPhysical(physical, count: 64)
        #expect(expected.starts(with: Array(Self.bannerPrefix.utf8)))
        #expect(try guest.readVirtual(fixture.bannerAddress, count: 64) == expected)
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: guest.ramFile))
        defer { try? handle.close() }
        try handle.seek(toOffset: physical)
        #expect(try handle.read(upToCount: 64).map { [UInt8]($0) } == expected)
        let mode = try FileManager.default.attributesOfItem(atPath: guest.ramFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func searchFindsWhatTheGuestWroteWhileItRuns() throws {
        let fixture = try fixture, guest = fixture.guest
        #expect(try guest.runState() == "running")
        let hits = try search(guest.ramFile, Self.pattern)
        #expect(!hits.isEmpty)
        #expect(hits.allSatisfy { $0.address < UInt64(guest.memoryBytes) }, "\(hits)")
        // 256 MiB on pc is one region from address 0: its offsets are the addresses.
        #expect(hits.allSatisfy { $0.offset == $0.address }, "\(hits)")
        // The guest keeps running, so a tty buffer may be reused; the page cache of /tmp/p is not.
        #expect(try hits.contains { try guest.readPhysical($0.address, count: Self.pattern.utf8.count) == Array(Self.pattern.utf8) }, "\(hits)")
    }

    @Test func searchFindsTheKernelBannerAtTheAddressQEMUTranslatesLinuxBannerTo() throws {
        let fixture = try fixture
        let physical = try fixture.guest.physicalAddress(ofVirtual: fixture.bannerAddress)
        let hits = try search(fixture.guest.ramFile, Self.bannerPrefix)
        #expect(hits.contains { $0.address == physical }, "linux_banner at 0x\(hex(physical)); hits \(hits)")
    }

    @Test func searchForTextNowhereInMemoryExitsOneWithoutOutput() throws {
        let absent = "ENGRAM-ABSENT-\(UUID().uuidString)"
        let result = try runEngram(["mem", "search", try fixture.guest.ramFile, absent])
        #expect(result.status == 1, "\(result.errors)")
        #expect(result.output.isEmpty)
    }

    @Test func virtualReadThroughThePageTablesMatchesTheMonitor() throws {
        let fixture = try fixture, guest = fixture.guest
        // Paused, so the page tables CR3 points at stay those of a live task while Engram walks them.
        try guest.pause()
        defer { try? guest.resume() }
        let cr3 = try guest.cr3()
        let expected = try guest.readVirtual(fixture.bannerAddress, count: 64)
        #expect(expected.starts(with: Array(Self.bannerPrefix.utf8)))
        let arguments = ["mem", "read", guest.ramFile, "--virt", "0x\(hex(fixture.bannerAddress))", "--cr3", "0x\(hex(cr3))", "--length", "64"]
        let dump = try hexDump(arguments)
        #expect(dump.bytes == expected)
        #expect(dump.firstAddress == fixture.bannerAddress)
        #expect(try rawBytes(arguments + ["--raw"]) == expected)
    }

    @Test func physicalReadMatchesTheMonitor() throws {
        let fixture = try fixture, guest = fixture.guest
        let banner = try guest.physicalAddress(ofVirtual: fixture.bannerAddress)
        // The banner, and 40 bytes of kernel text at 16 MiB: a length that ends mid-line.
        for (address, length) in [(banner, 64), (UInt64(0x100_0000), 40)] {
            let expected = try guest.readPhysical(address, count: length)
            let dump = try hexDump(["mem", "read", guest.ramFile, "0x\(hex(address))", "--length", "\(length)"])
            #expect(dump.bytes == expected, "at 0x\(hex(address))")
            #expect(dump.firstAddress == address)
        }
    }

    @Test func migrationStreamHoldsThePatternAndTheBanner() throws {
        let fixture = try fixture, guest = fixture.guest
        let stream = guest.directory.path("migration.stream")
        try guest.migrate(to: stream)
        defer { try? guest.resume() }
        defer { guest.directory.remove("migration.stream") }
        // Paused after the migration: memory is what the stream holds, and the monitor sees the same.
        #expect(try guest.runState() == "postmigrate")
        let hits = try search(stream, Self.pattern)
        #expect(try hits.contains { try guest.readPhysical($0.address, count: Self.pattern.utf8.count) == Array(Self.pattern.utf8) }, "\(hits)")
        let physical = try guest.physicalAddress(ofVirtual: fixture.bannerAddress)
        #expect(try search(stream, Self.bannerPrefix).contains { $0.address == physical })
        let dump = try hexDump(["mem", "read", stream, "--virt", "0x\(hex(fixture.bannerAddress))", "--cr3", "0x\(hex(guest.cr3()))", "--length", "64"])
        #expect(dump.bytes == (try guest.readVirtual(fixture.bannerAddress, count: 64)))
    }

    @Test func qemuDumpGuestMemoryGivesCR3FromItsNotes() throws {
        let fixture = try fixture, guest = fixture.guest
        let core = guest.directory.path("qemu-dump.elf")
        try guest.dumpGuestMemory(to: core, paging: false)
        defer { guest.directory.remove("qemu-dump.elf") }
        let expected = try guest.readVirtual(fixture.bannerAddress, count: 64)
        let dump = try hexDump(["mem", "read", core, "--virt", "0x\(hex(fixture.bannerAddress))", "--length", "64"])
        #expect(dump.bytes == expected)
        let physical = try guest.physicalAddress(ofVirtual: fixture.bannerAddress)
        #expect(try hexDump(["mem", "read", core, "0x\(hex(physical))", "--length", "64"]).bytes == expected)
        // The same hits whether the pattern is given as text or as hex bytes.
        let hits = try search(core, Self.pattern).map(\.address)
        #expect(!hits.isEmpty)
        #expect(try search(core, hex: Array(Self.pattern.utf8)).map(\.address) == hits)
    }

    @Test func exportedELFIsReadByVolatility() throws {
        let fixture = try fixture, guest = fixture.guest
        let core = guest.directory.path("export.elf")
        let export = try runEngram(["mem", "export", guest.ramFile, core, "--format", "elf"], timeout: 120)
        defer { guest.directory.remove("export.elf") }
        try #require(export.status == 0, "\(export.errors)")
        let physical = try guest.physicalAddress(ofVirtual: fixture.bannerAddress)
        #expect(try hexDump(["mem", "read", core, "0x\(hex(physical))", "--length", "64"]).bytes == (try guest.readPhysical(physical, count: 64)))
        let banners = try Volatility.run(["banners.Banners"], on: core, cache: guest.directory.path("volatility-cache"))
        let release = try #require(QEMULinuxGuest.kernelRelease)
        // volatility's offsets in an ELF core are physical addresses: the export's PT_LOADs must say where RAM is.
        #expect(banners.contains("0x\(hex(physical))\tLinux version \(release) ("), "\(banners)")
    }

    @Test func searchRejectsAFileThatIsNoImageInOneLine() throws {
        let path = try fixture.guest.directory.path("random.bin")
        try Data((0..<10_000).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: path))
        let result = try runEngram(["mem", "search", path, "ENGRAM"])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.errors.split(separator: "\n").count == 1, "\(result.errors)")
    }

    // MARK: Helpers

    struct Hit: CustomStringConvertible {
        let address: UInt64
        let location: String
        var description: String { "0x\(hex(address)) \(location)" }
        /// The offset in "<region>+0x<offset>".
        var offset: UInt64? { location.split(separator: "+").last.flatMap(parseHex) }
    }

    /// `engram mem search IMAGE TEXT`: its hits ("0x<guest-physical> <region>+0x<offset>" lines), or
    /// none when it exits 1; any other status fails the test.
    func search(_ image: String, _ text: String) throws -> [Hit] {
        try search(image, query: [text])
    }

    /// `engram mem search IMAGE --hex HEX`.
    func search(_ image: String, hex bytes: [UInt8]) throws -> [Hit] {
        try search(image, query: ["--hex", bytes.map { String(format: "%02x", $0) }.joined()])
    }

    func search(_ image: String, query: [String]) throws -> [Hit] {
        let arguments = ["mem", "search", image] + query + ["--max-hits", "1000"]
        let result = try runEngram(arguments, timeout: 120)
        try #require(result.status == 0 || result.status == 1, "engram \(arguments.joined(separator: " ")): status \(result.status): \(result.errors)")
        let hits = try result.output.split(separator: "\n").map { line in
            let fields = line.split(separator: " ")
            let address = try #require(fields.count == 2 ? parseHex(fields[0]) : nil, "search output line: \(line)")
            #expect(fields[1].contains("+0x"), "search output line: \(line)")
            return Hit(address: address, location: String(fields[1]))
        }
        #expect((result.status == 0) == !hits.isEmpty, "status \(result.status) with \(hits.count) hits")
        return hits
    }

    /// The bytes and first address of `engram mem read` output: "ADDRESS: xx xx .. |ascii|", 16 bytes a line.
    func hexDump(_ arguments: [String]) throws -> (firstAddress: UInt64?, bytes: [UInt8]) {
        let result = try runEngram(arguments)
        try #require(result.status == 0, "engram \(arguments.joined(separator: " ")): status \(result.status): \(result.errors)")
        var firstAddress: UInt64?
        var bytes: [UInt8] = []
        for line in result.output.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if firstAddress == nil { firstAddress = parseHex(line[..<colon]) }
            // Two-digit hex tokens up to the ASCII column, which starts with "|".
            for token in line[line.index(after: colon)...].split(separator: " ") {
                guard token.count == 2, let byte = UInt8(token, radix: 16) else { break }
                bytes.append(byte)
            }
        }
        return (firstAddress, bytes)
    }

    /// The bytes `engram mem read ... --raw` writes to standard output.
    func rawBytes(_ arguments: [String]) throws -> [UInt8] {
        let result = try runCapturingBytes(ProjectPaths.engram, arguments)
        try #require(result.status == 0, "engram \(arguments.joined(separator: " ")): status \(result.status): \(result.errors)")
        return [UInt8](result.output)
    }
}

private func hex(_ value: UInt64) -> String { String(value, radix: 16) }

private func parseHex(_ text: Substring) -> UInt64? {
    let digits = text.trimmingCharacters(in: .whitespaces)
    return UInt64(digits.hasPrefix("0x") ? String(digits.dropFirst(2)) : digits, radix: 16)
}

/// The guest the suite shares, with what the guest itself produced in memory and where
/// linux_banner is.
final class LinuxGuestFixture: Sendable {
    let guest: QEMULinuxGuest
    let bannerAddress: UInt64

    @TaskLocal static var current: LinuxGuestFixture?

    init() throws {
        guest = try QEMULinuxGuest()
        do {
            // The full pattern appears only in what the guest prints and stores, never in what is typed.
            try guest.type(#"a=ENGRAM; b=PATTERN; echo "$a-INSPECT-$b-$((6*7))" > /tmp/p; cat /tmp/p"#,
                           expect: InspectQEMULinuxTests.pattern)
            bannerAddress = try guest.symbolAddress("linux_banner")
        } catch {
            guest.stop()
            throw error
        }
    }
}

/// Boots the guest once around the whole suite and kills QEMU when the suite ends.
struct BootedLinuxGuest: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let fixture = try LinuxGuestFixture()
        defer { fixture.guest.stop() }
        try await LinuxGuestFixture.$current.withValue(fixture) { try await function() }
    }
}

extension Trait where Self == BootedLinuxGuest {
    static var bootedLinuxGuest: Self { Self() }
}

/// volatility3 (pip package, installed by scripts/setup.sh), run as its `vol` entry point does.
enum Volatility {
    static let entryPoint = "import sys; from volatility3.cli import main; sys.argv[0] = 'vol'; sys.exit(main())"

    /// Runs `vol -q --offline -f image PLUGIN...` with its cache in `cache` (not ~/.cache); returns its standard output.
    static func run(_ plugin: [String], on image: String, cache: String) throws -> String {
        let check = try runCapturingBytes("/usr/bin/env", ["python3", "-c", "import volatility3"], timeout: 60)
        try #require(check.status == 0, "volatility3 is not installed (scripts/setup.sh installs it): \(check.errors)")
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)  // vol does not create it
        let arguments = ["python3", "-c", entryPoint, "-q", "--offline", "--cache-path", cache, "-f", image] + plugin
        let result = try runCapturingBytes("/usr/bin/env", arguments, timeout: 150)
        try #require(result.status == 0, "vol \(plugin.joined(separator: " ")) on \(image): status \(result.status): \(result.errors.suffix(1500))")
        return String(decoding: result.output, as: UTF8.self)
    }
}
