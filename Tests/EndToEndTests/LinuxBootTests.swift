import Foundation
import Testing
import TestSupport

/// Debian's stock bzImage through the Linux boot protocol, as far as this host's KVM lets it run.
///
/// On a host with hardware virtualization it boots to the initramfs and powers off; on a PVM
/// host (no VMX/SVM) the kernel dies early in KVM's instruction emulator. Either way the
/// console must show the banner, the command line and the e820 map Engram handed over.
@Suite(.enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasLinuxImage, "needs /dev/kvm and guest/linux/build (guest/linux/build-image.sh)"))
struct LinuxBootTests {
    @Test func bootsDebianKernelAsFarAsKVMAllows() throws {
        let marker = "engram-e2e-\(UUID().uuidString.prefix(6))"
        let cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 keep_bootcon reboot=k panic=-1 engram.poweroff \(marker)"
        // The payload is unpacked on the host: in this KVM's emulator the guest's own xz decompressor runs for many minutes.
        let process = try GuestProcess.engram(["run", "--kernel", ProjectPaths.linuxKernel, "--decompress-on-host", "--initrd", ProjectPaths.linuxInitramfs,
                                               "--memory", "512M", "--cmdline", cmdline])
        defer { process.stop() }
        let banner = try process.waitForLine(containing: "Linux version", timeout: 120)
        #expect(banner.contains("Debian"))
        try process.waitForLine(containing: marker, timeout: 120)
        try process.waitForLine(containing: "BIOS-e820: [mem 0x0000000000100000-0x000000001fffffff] usable", timeout: 120)
        try process.waitForLine(containing: "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved", timeout: 120)
        let status = try process.waitForExit(timeout: 300)
        if process.consoleText.contains("ENGRAM-LINUX-INIT READY") {
            #expect(status == 0)  // hardware virtualization: booted to the initramfs, powered off
        } else {
            #expect(status != 0)
            #expect(process.errorText.contains("KVM internal error (emulation failure)"))
            #expect(process.errorText.contains("at RIP 0x"))
        }
    }

    /// With a display, the kernel finds a VESA framebuffer in screen_info. Where Linux boots fully
    /// its framebuffer console (console=tty0) draws into the display file; here it must get as far
    /// as it does without one.
    @Test func bootsWithADisplayAsFarAsWithout() throws {
        let directory = TemporaryDirectory()
        let display = directory.path("linux.fb")
        let cmdline = "console=tty0 console=ttyS0 earlyprintk=serial,ttyS0,115200 keep_bootcon reboot=k panic=-1 engram.poweroff"
        let process = try GuestProcess.engram(["run", "--kernel", ProjectPaths.linuxKernel, "--decompress-on-host", "--initrd", ProjectPaths.linuxInitramfs,
                                               "--memory", "512M", "--cmdline", cmdline, "--display", display])
        defer { process.stop() }
        try process.waitForLine(containing: "BIOS-e820: [mem 0x0000000000100000-0x000000001fffffff] usable", timeout: 120)
        let status = try process.waitForExit(timeout: 300)
        if process.consoleText.contains("ENGRAM-LINUX-INIT READY") {
            #expect(status == 0)
            let pixels = try Data(contentsOf: URL(fileURLWithPath: display)).dropFirst(4096)
            #expect(pixels.contains { $0 != 0 }, "Linux's framebuffer console drew nothing")
        } else {
            #expect(status != 0)
            #expect(process.errorText.contains("KVM internal error (emulation failure)"))
        }
    }
}
