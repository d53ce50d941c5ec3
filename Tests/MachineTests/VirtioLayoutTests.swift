import Devices
@testable import Machine
import Testing

/// Where virtio devices go: disks, then rng, then vsock, each a page and its own line, and the
/// kernel command line announcing exactly those.
@Suite struct VirtioLayoutTests {
    @Test func vsockComesAfterTheDisksAndTheEntropyDevice() {
        var configuration = MachineConfiguration(kernelPath: "/k")
        configuration.disks = [DiskConfiguration(path: "/a"), DiskConfiguration(path: "/b")]
        configuration.entropy = EntropyConfiguration()
        configuration.vsock = VsockConfiguration(guestCID: 3, path: "/tmp/v.sock")
        let layout = VirtioLayout(configuration)
        #expect(layout.slots.map(\.name) == ["blk0", "blk1", "rng0", "vsock0"])
        #expect(layout.slots.map(\.type) == [.block, .block, .entropy, .vsock])
        #expect(layout.slots[3].window.base == VirtioLayout.firstWindow + 3 * VirtioLayout.windowSize)
        #expect(layout.commandLineTokens[3] == "virtio_mmio.device=4K@0xfeb03000:9")
    }

    @Test func networkInterfacesFollowTheDisks() {
        var configuration = MachineConfiguration(kernelPath: "/k")
        configuration.disks = [DiskConfiguration(path: "/a")]
        configuration.networks = [NetworkConfiguration(backend: .tap("t0")), NetworkConfiguration(backend: .descriptor(7))]
        configuration.entropy = EntropyConfiguration()
        #expect(VirtioLayout(configuration).slots.map(\.name) == ["blk0", "net0", "net1", "rng0"])
        #expect(VirtioLayout(configuration).slots.map(\.type) == [.block, .network, .network, .entropy])
    }

    @Test func vsockAloneTakesTheFirstSlot() {
        var configuration = MachineConfiguration(kernelPath: "/k")
        configuration.vsock = VsockConfiguration(guestCID: 7, path: "/tmp/v.sock")
        #expect(VirtioLayout(configuration).slots.map(\.name) == ["vsock0"])
        #expect(VirtioLayout(configuration).commandLineTokens == ["virtio_mmio.device=4K@0xfeb00000:5"])
    }
}
