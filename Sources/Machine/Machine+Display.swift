import Devices
import GuestMemory

extension Machine {
    /// The region name of the framebuffer.
    package static let framebufferRegionName = "framebuffer"

    /// Creates the framebuffer region of a display: the 4096-byte header the VMM writes, then the
    /// pixel area the guest sees (black at start).
    static func makeFramebuffer(
        _ display: DisplayConfiguration, backing: RegionBacking
    ) throws(MachineError) -> (region: GuestRegion, mapping: GuestMapping) {
        let header = FramebufferHeader(
            geometry: display.geometry, guestAddress: X86Layout.framebufferAddress.rawValue,
            controlSocketPath: display.controlSocketPath)
        let region: GuestRegion
        do {
            region = try GuestRegion(name: framebufferRegionName, sizeInBytes: UInt64(header.fileSize), backing: backing)
            try region.write(header.bytes, at: RegionOffset(0))
        } catch { throw .memory(error) }
        return (region, try framebufferMapping(region))
    }

    /// Where a framebuffer region's pixels appear to the guest: everything past its header page.
    /// Taken from the region's size alone, so a lazy restore needs no header page first.
    static func framebufferMapping(_ region: GuestRegion) throws(MachineError) -> GuestMapping {
        let header = UInt64(FramebufferHeader.size)
        guard region.sizeInBytes > header, region.sizeInBytes - header <= UInt64(FramebufferGeometry.maximumPixelBytes) else {
            throw .display(
                "framebuffer region is \(region.sizeInBytes) bytes; expected a 4096-byte header and at most \(FramebufferGeometry.maximumPixelBytes) bytes of pixels")
        }
        return GuestMapping(guestAddress: X86Layout.framebufferAddress, sizeInBytes: region.sizeInBytes - header,
                            region: region, regionOffset: RegionOffset(header))
    }

    /// Presses or releases keys on the guest's PS/2 keyboard, given as X11 keysyms (what RFB
    /// sends). Returns how many events, from the first, the keyboard took: a keysym it has no key
    /// for counts as taken and is dropped; it stops at the first key that does not fit (buffer
    /// full, or the guest has the keyboard disabled), so the caller can send the rest again later.
    package func keyboardInput(_ events: [KeyEvent]) -> Int {
        let keyboard = devices.keyboardController
        return keyboardTranslator.withLock { translator in
            var taken = 0
            for event in events {
                var attempt = translator
                guard let codes = attempt.scancodes(for: event, set: keyboard.scancodeSetSeen) else {
                    taken += 1  // no such key: consumed, as a PC keyboard ignores it
                    continue
                }
                guard keyboard.injectKeystroke(codes) else { break }
                translator = attempt
                taken += 1
            }
            return taken
        }
    }
}

extension Machine {
    /// Points the display file's header at this VMM's control socket (a restored framebuffer
    /// still names the socket of the VM it was saved from). Does nothing without a display.
    package func setDisplayControlSocket(_ path: String) {
        guard let region = memory.region(named: Self.framebufferRegionName),
              let page = try? region.read(count: FramebufferHeader.size, at: RegionOffset(0)),
              case .success(var header) = FramebufferHeader.decode(page, fileSize: Int(region.sizeInBytes), name: "framebuffer")
        else { return }
        header.controlSocketPath = path
        try? region.write(header.bytes, at: RegionOffset(0))
    }
}
