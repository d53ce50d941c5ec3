@testable import engram
import Testing

@Suite struct ArgumentTests {
    @Test func sizesTakeBinarySuffixes() {
        #expect(ByteSize(argument: "512M")?.bytes == 512 << 20)
        #expect(ByteSize(argument: "1g")?.bytes == 1 << 30)
        #expect(ByteSize(argument: "2GiB")?.bytes == 2 << 30)
        #expect(ByteSize(argument: "4096")?.bytes == 4096)
        #expect(ByteSize(argument: "64K")?.bytes == 64 << 10)
    }

    @Test func badSizesAreRejected() {
        for text in ["", "M", "0", "-1G", "1.5G", "12Q", "99999999999T"] {
            #expect(ByteSize(argument: text) == nil, "\(text) was accepted")
        }
    }

    @Test func sharedMapsNameAFilePerRegion() throws {
        let option = try #require(SharedMapsOption(argument: "/dev/shm/vm1:ram,vga"))
        #expect(option.prefix == "/dev/shm/vm1")
        #expect(option.regionNames == ["ram", "vga"])
        #expect(option.path(for: "ram") == "/dev/shm/vm1.ram")
        #expect(SharedMapsOption(argument: "noregions") == nil)
        #expect(SharedMapsOption(argument: ":ram") == nil)
        #expect(SharedMapsOption(argument: "/tmp/x:") == nil)
    }

    @Test func runRefusesTwoBackingsForMainRAM() {
        #expect(throws: (any Error).self) {
            try RunCommand.parse(["--kernel", "k", "--anonymous-memory", "--ram-file", "/tmp/r"])
        }
        #expect(throws: (any Error).self) { try RunCommand.parse(["--kernel", "k", "--cpus", "0"]) }
        #expect(throws: (any Error).self) { try RunCommand.parse(["--kernel", "k", "--memory", "lots"]) }
        #expect((try? RunCommand.parse(["--kernel", "k", "--memory", "1G", "--cpus", "2"]))?.memory.bytes == 1 << 30)
    }

    @Test func restoreTakesAModeAndRefusesSharedMapsWithMap() throws {
        #expect(try RestoreCommand.parse(["vm.snap"]).memory == .map)
        #expect(try RestoreCommand.parse(["vm.snap", "--memory", "lazy", "--verify"]).verify)
        #expect(try RestoreCommand.parse(["vm.snap", "--memory", "copy", "--shared-maps", "/dev/shm/x:ram"]).sharedMaps != nil)
        #expect(throws: (any Error).self) { try RestoreCommand.parse(["vm.snap", "--memory", "eager"]) }
        #expect(throws: (any Error).self) { try RestoreCommand.parse(["vm.snap", "--shared-maps", "/dev/shm/x:ram"]) }
        #expect(throws: (any Error).self) { try RestoreCommand.parse([]) }
    }
}
