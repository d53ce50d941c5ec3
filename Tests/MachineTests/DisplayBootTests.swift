import Devices
import GuestMemory
@testable import Machine
import Testing

/// How a display is announced at boot: a PVH module describing the framebuffer, Linux's
/// screen_info, and the framebuffer region's header and mapping.
@Suite struct DisplayBootTests {
    private let geometry = try! FramebufferGeometry.parse("1024x768").get()

    @Test func pvhModuleDescribesTheFramebufferAfterTheInitrd() {
        let map = [E820Entry(address: 0, sizeInBytes: 0x9fc00, kind: .ram)]
        let pvh = PVHStartInfo.build(memoryMap: map, initrd: (0x200_0000, 0x1234), framebuffer: geometry)
        #expect(ByteReader(bytes: pvh.info).get(UInt32.self, at: 12) == 2)
        let modules = ByteReader(bytes: pvh.modules)
        #expect(modules.get(UInt64.self, at: 0) == 0x200_0000)
        #expect(modules.get(UInt64.self, at: 32) == 0xd000_0000)
        #expect(modules.get(UInt64.self, at: 40) == 1024 * 768 * 4)
        #expect(modules.get(UInt64.self, at: 48) == X86Layout.pvhModuleCommandLineAddress.rawValue)
        #expect(String(decoding: pvh.moduleCommandLines.dropLast(), as: UTF8.self)
            == "engram-framebuffer width=1024 height=768 stride=4096 format=xrgb8888")
        #expect(pvh.moduleCommandLines.last == 0)
        let alone = PVHStartInfo.build(memoryMap: map, initrd: nil, framebuffer: geometry)
        #expect(ByteReader(bytes: alone.info).get(UInt32.self, at: 12) == 1)
        #expect(ByteReader(bytes: alone.modules).get(UInt64.self, at: 0) == 0xd000_0000)
        #expect(PVHStartInfo.build(memoryMap: map, initrd: nil).moduleCommandLines.isEmpty)
    }

    @Test func linuxScreenInfoIsAVESALinearFramebuffer() throws {
        var page = ByteWriter(count: 4096)
        LinuxBootParams.putScreenInfo(geometry, into: &page)
        let info = ByteReader(bytes: page.bytes)
        #expect(info.get(UInt8.self, at: 0x0f) == 0x23)
        #expect(info.get(UInt16.self, at: 0x12) == 1024)
        #expect(info.get(UInt16.self, at: 0x14) == 768)
        #expect(info.get(UInt16.self, at: 0x16) == 32)
        #expect(info.get(UInt32.self, at: 0x18) == 0xd000_0000)
        #expect(info.get(UInt32.self, at: 0x1c) == 48)              // 3 MiB in 64 KiB units
        #expect(info.get(UInt16.self, at: 0x24) == 4096)
        #expect(page.bytes[0x26...0x2d] == [8, 16, 8, 8, 8, 0, 8, 24])
    }

    @Test func framebufferRegionHoldsTheHeaderAndMapsOnlyPixels() throws {
        let display = DisplayConfiguration(geometry: geometry, controlSocketPath: "/tmp/vm.sock")
        let (region, mapping) = try Machine.makeFramebuffer(display, backing: .memfd)
        #expect(region.sizeInBytes == 4096 + 3 << 20)
        #expect(mapping.guestAddress == GuestAddress(0xd000_0000))
        #expect(mapping.regionOffset == RegionOffset(4096))
        #expect(mapping.sizeInBytes == 3 << 20)
        let header = try FramebufferHeader.decode(try region.read(count: 4096, at: RegionOffset(0)), fileSize: Int(region.sizeInBytes), name: "fb").get()
        #expect(header.controlSocketPath == "/tmp/vm.sock" && header.geometry == geometry)
        let tiny = try GuestRegion(name: "framebuffer", sizeInBytes: 4096, backing: .memfd)
        #expect(throws: MachineError.self) { try Machine.framebufferMapping(tiny) }
    }
}
