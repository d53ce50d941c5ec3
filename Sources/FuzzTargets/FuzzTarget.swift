/// Every parser of outside input, as a function of arbitrary bytes: what libFuzzer drives
/// (`engram-fuzz`, scripts/fuzz.sh) and what the regression test replays (Fuzz/corpus,
/// Fuzz/regressions). A target may throw away anything it is given with an error; it must never
/// crash, hang, or read or write outside what it owns.
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// `engram mem`'s opener on a file of these bytes: an Engram snapshot (header, region
    /// tables, bitmaps, CRC tables, state), a QEMU migration stream, or an ELF core; then every
    /// region's first pages and the processors' registers read back.
    case image
    /// A snapshot file as a restore opens it (SnapshotReader), and its machine state decoded.
    case snapshot
    /// A diff chain of up to three files as a restore resolves it: parents by name and identity,
    /// the same regions in each, every stored page read and checked.
    case chain
    /// A machine-state container (sections) as a restore, a migration or a live update decodes it.
    case state
    /// A working-set file.
    case workingSet = "working-set"
    /// The page and migration protocols' frames, read from a connection as a peer would send them:
    /// headers, PAGES records, manifests, migration plans, machine-state previews; then a
    /// migration destination's receive loops (control connection and page channel) on the same bytes.
    case frames
    /// The object store's replies and objects: S3 XML (errors, listings, uploads), snapshot
    /// manifests and pack indexes.
    case objectStore = "object-store"
    /// A control-API request (method, path, JSON body) routed to every endpoint.
    case control
    /// A display file's header, as `engram display` reads it.
    case framebuffer
    /// A VNC viewer's messages (handshake, pixel formats, encodings, update requests, keys,
    /// pointer, clipboard) to Engram's RFB server over a loopback connection.
    case rfb
    /// A driver's virtqueue: descriptor chains (direct and indirect) walked and copied as devices do.
    case virtqueue
    /// A driver's requests to the block, entropy and vsock devices through the MMIO transport:
    /// block headers and sector ranges, vsock packet headers, the lengths in them.
    case device

    /// Runs the target on `bytes`.
    package func run(_ bytes: [UInt8]) {
        switch self {
        case .image: ImageInput.run(bytes)
        case .snapshot: SnapshotInput.run(bytes)
        case .chain: ChainInput.run(bytes)
        case .state: StateInput.run(bytes)
        case .workingSet: WorkingSetInput.run(bytes)
        case .frames: FrameInput.run(bytes)
        case .objectStore: ObjectStoreInput.run(bytes)
        case .control: ControlInput.run(bytes)
        case .framebuffer: FramebufferInput.run(bytes)
        case .rfb: RFBInput.run(bytes)
        case .virtqueue: VirtqueueInput.run(bytes)
        case .device: DeviceRequestInput.run(bytes)
        }
    }

    /// The target named by the ENGRAM_FUZZ_TARGET variable.
    package static func named(_ name: String) -> FuzzTarget? { FuzzTarget(rawValue: name) }
}
