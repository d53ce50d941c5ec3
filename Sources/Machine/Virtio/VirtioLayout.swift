import Devices

/// Where each virtio device of a configuration sits: its name, type, MMIO window and interrupt
/// line, in a fixed order (disks, network interfaces, the entropy device, the vsock device, the balloon), so the command line written at boot
/// and the devices built around it always agree. Network interfaces follow the disks.
struct VirtioLayout: Sendable, Equatable {
    struct Slot: Sendable, Equatable {
        let name: String
        let type: VirtioDeviceType
        let window: MMIOBus.Window
        let gsi: UInt32
    }

    /// Windows of one page each from here up (below the IOAPIC at 0xfec00000), as QEMU's microvm places them.
    static let firstWindow: UInt64 = 0xfeb0_0000
    static let windowSize: UInt64 = 0x1000
    /// Interrupt lines handed out in order: ISA lines no legacy device uses, then the IOAPIC-only ones.
    static let interruptLines: [UInt32] = [5, 6, 7, 9, 10, 11, 14, 15] + Array(16...23)
    static var maximumDeviceCount: Int { interruptLines.count }

    let slots: [Slot]

    init(_ configuration: MachineConfiguration) {
        var kinds: [(String, VirtioDeviceType)] = configuration.disks.indices.map { ("blk\($0)", .block) }
        kinds += configuration.networks.indices.map { ("net\($0)", .network) }
        if configuration.entropy != nil { kinds.append(("rng0", .entropy)) }
        if configuration.vsock != nil { kinds.append(("vsock0", .vsock)) }
        if configuration.balloon != nil { kinds.append(("balloon0", .balloon)) }
        slots = kinds.prefix(Self.maximumDeviceCount).enumerated().map { index, kind in
            Slot(name: kind.0, type: kind.1,
                 window: MMIOBus.Window(base: Self.firstWindow + UInt64(index) * Self.windowSize, size: Self.windowSize),
                 gsi: Self.interruptLines[index])
        }
    }

    /// Linux's announcement of each device, `virtio_mmio.device=4K@0xfeb00000:5`.
    var commandLineTokens: [String] {
        slots.map { "virtio_mmio.device=4K@0x\(String($0.window.base, radix: 16)):\($0.gsi)" }
    }
}
