import FoundationEssentials
import Devices
import GuestMemory
import Machine

/// What one VMM hands the binary it execs in a live update: the machine state, and which
/// inherited descriptors hold guest memory, the control socket and the devices' host sides.
///
/// Written as JSON (mode 0600) at the update's state path just before exec; the new process
/// reads it, maps the descriptors it names and deletes it once the guest runs. Versioned on its
/// own, apart from the machine state inside, so each side can tell which one it does not speak.
package struct UpdateHandoff: Codable, Sendable, Equatable {
    /// 1: the first handoff layout.
    package static let currentVersion = 1

    /// Optional parts a version 1 handoff may carry, which `engram version --json` lists so the
    /// old VMM writes only what the new binary reads: `devices`.
    package static let devicesFeature = "devices"
    /// The binary can take over while the old VMM runs (`engram update --mode transfer`).
    package static let transferFeature = "transfer"
    /// The binary reads `machine` as one section container (base64) as well as the record's JSON.
    package static let machineSectionsFeature = "machine-sections"
    package static let features = [devicesFeature, transferFeature, machineSectionsFeature]

    package var version = UpdateHandoff.currentVersion
    /// This update's number for the VM (1 for its first attempt).
    package var update: Int
    /// Updates this VM completed before this one.
    package var updatesCompleted: Int
    /// The version of the VMM that wrote the handoff.
    package var fromVersion: String
    /// The binary exec'd, which becomes the default of the next update.
    package var binary: String
    /// Where this handoff lies; where the new process leaves a snapshot if it cannot continue.
    package var statePath: String
    /// CLOCK_MONOTONIC, in nanoseconds, when the old VMM had stopped every vCPU.
    package var pausedAtNanoseconds: UInt64
    /// How long saving the state and writing this file took in the old VMM.
    package var saveMilliseconds: Double
    /// False if the guest was paused before the update: it stays paused.
    package var resume: Bool
    package var regions: [InheritedRegion]
    /// The control API's listening socket, kept open across exec.
    package var controlSocket: InheritedSocket?
    /// The console log, continued (appended to) by the new VMM.
    package var consoleLogPath: String?
    /// The terminal mode to put back when the VM ends (the old VMM had made it raw): termios bytes.
    package var terminalMode: [UInt8]?
    /// The machine, paused.
    package var machine: MachineStateRecord {
        get { handedOverMachine.record }
        set { handedOverMachine.record = newValue }
    }
    /// Whether `machine` is written as a snapshot's section container, which a binary with
    /// `machineSectionsFeature` reads, rather than as the record's own JSON (for older binaries).
    /// The sections cost a fifth of the JSON to encode and decode, inside the guest's pause.
    package var machineInSections: Bool {
        get { handedOverMachine.inSections }
        set { handedOverMachine.inSections = newValue }
    }
    private var handedOverMachine: HandedOverMachine
    /// Each virtio disk's image, kept open across exec (absent in handoffs before devices).
    /// Still written beside `devices`, for a binary that reads only this.
    package var disks: [InheritedDescriptor]? = nil
    /// Each virtio device's host side kept across exec (absent in handoffs before vsock
    /// connections were kept, which have only `disks`).
    package var devices: [InheritedDevice]? = nil

    package init(
        update: Int, updatesCompleted: Int, fromVersion: String, binary: String, statePath: String, pausedAtNanoseconds: UInt64,
        saveMilliseconds: Double, resume: Bool, regions: [InheritedRegion], controlSocket: InheritedSocket?,
        consoleLogPath: String?, terminalMode: [UInt8]?, machine: MachineStateRecord
    ) {
        self.update = update
        self.updatesCompleted = updatesCompleted
        self.fromVersion = fromVersion
        self.binary = binary
        self.statePath = statePath
        self.pausedAtNanoseconds = pausedAtNanoseconds
        self.saveMilliseconds = saveMilliseconds
        self.resume = resume
        self.regions = regions
        self.controlSocket = controlSocket
        self.consoleLogPath = consoleLogPath
        self.terminalMode = terminalMode
        self.handedOverMachine = HandedOverMachine(record: machine, inSections: false)
    }

    enum CodingKeys: String, CodingKey {
        case version, update, updatesCompleted, fromVersion, binary, statePath, pausedAtNanoseconds, saveMilliseconds, resume
        case regions, controlSocket, consoleLogPath, terminalMode, disks, devices
        case handedOverMachine = "machine"
    }

    /// Every descriptor the new process must find open, each once.
    package var descriptors: [CInt] {
        var all = regions.map(\.descriptor) + (controlSocket.map { [$0.descriptor] } ?? []) + (disks ?? []).map(\.descriptor)
        for device in devices ?? [] { all += device.descriptors.map(\.descriptor) + (device.state.map { [$0] } ?? []) }
        var seen = Set<CInt>()
        return all.filter { seen.insert($0).inserted }
    }

    /// Records the devices' host sides, and the disks among them in `disks` as well.
    package mutating func keep(_ devices: [InheritedDevice]) {
        self.devices = devices
        disks = devices.compactMap { device in
            device.descriptor(role: VirtioBlock.diskDescriptorName).map { InheritedDescriptor(name: device.device, descriptor: $0) }
        }
    }
}

/// One virtio device's host side kept across exec: its descriptors, named `DEVICE.ROLE`
/// (`blk0.disk`, `vsock0.listener`, `vsock0.conn.5000.1073741824`), and the back-end's own
/// live-update state (vsock's connection table) in a memfd of its own, also kept open, so the
/// handoff file stays small whatever the devices buffer.
package struct InheritedDevice: Codable, Sendable, Equatable {
    package var device: String
    package var descriptors: [InheritedDescriptor]
    /// The memfd holding the back-end's state; absent when it has none.
    package var state: CInt?

    package init(device: String, descriptors: [InheritedDescriptor], state: CInt? = nil) {
        self.device = device
        self.descriptors = descriptors
        self.state = state
    }

    /// The descriptor kept for `role` (`disk` finds `blk0.disk`).
    package func descriptor(role: String) -> CInt? {
        descriptors.first { $0.name == "\(device).\(role)" }?.descriptor
    }
}

/// A device's host file kept open across exec, by device name (`blk0`).
package struct InheritedDescriptor: Codable, Sendable, Equatable {
    package var name: String
    package var descriptor: CInt

    package init(name: String, descriptor: CInt) {
        self.name = name
        self.descriptor = descriptor
    }
}

/// How an inherited region was made: the backings whose memory survives exec.
package enum InheritedBacking: Sendable, Equatable {
    case memfd
    case file(path: String)
    case sharedFile(path: String)
    case hugetlbfs(directory: String)

    /// The backing that maps the inherited descriptor again in the new process.
    package var regionBacking: RegionBacking {
        switch self {
        case .memfd: .memfd
        case .file(let path): .file(path: path)
        case .sharedFile(let path): .sharedFile(path: path, overwrite: false)
        case .hugetlbfs(let directory): .hugetlbfs(directory: directory)
        }
    }

    /// The region's file, for GET /vm/memory (a hugetlbfs file is unlinked: it has none).
    package var filePath: String? {
        switch self {
        case .memfd, .hugetlbfs: nil
        case .file(let path), .sharedFile(let path): path
        }
    }
}

/// One guest memory region kept open across exec: its descriptor and how it was made. In the
/// handoff's JSON the backing is `backing` (RegionBacking.kindName) and `path` (the file, or the
/// hugetlbfs mount), as version 1 of the handoff wrote them.
package struct InheritedRegion: Codable, Sendable, Equatable {
    package var name: String
    package var sizeInBytes: UInt64
    package var backing: InheritedBacking
    package var descriptor: CInt

    package init(name: String, sizeInBytes: UInt64, backing: InheritedBacking, descriptor: CInt) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.backing = backing
        self.descriptor = descriptor
    }

    private enum CodingKeys: String, CodingKey { case name, sizeInBytes, backing, path, descriptor }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        sizeInBytes = try container.decode(UInt64.self, forKey: .sizeInBytes)
        descriptor = try container.decode(CInt.self, forKey: .descriptor)
        let kind = try container.decode(String.self, forKey: .backing)
        let path = try container.decodeIfPresent(String.self, forKey: .path)
        switch (kind, path) {
        case ("memfd", _): backing = .memfd
        case ("file", let path?): backing = .file(path: path)
        case ("shared-file", let path?): backing = .sharedFile(path: path)
        case ("hugetlbfs", let directory?): backing = .hugetlbfs(directory: directory)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .backing, in: container, debugDescription: "region \(name) has backing \(kind), which cannot be inherited")
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(sizeInBytes, forKey: .sizeInBytes)
        try container.encode(descriptor, forKey: .descriptor)
        switch backing {
        case .memfd: try container.encode("memfd", forKey: .backing)
        case .file(let path): try container.encode("file", forKey: .backing); try container.encode(path, forKey: .path)
        case .sharedFile(let path): try container.encode("shared-file", forKey: .backing); try container.encode(path, forKey: .path)
        case .hugetlbfs(let directory): try container.encode("hugetlbfs", forKey: .backing); try container.encode(directory, forKey: .path)
        }
    }
}

/// The control API's listening socket kept open across exec.
package struct InheritedSocket: Codable, Sendable, Equatable {
    package var path: String
    package var descriptor: CInt

    package init(path: String, descriptor: CInt) {
        self.path = path
        self.descriptor = descriptor
    }
}

/// The handoff's `machine`: a base64 section container (`MachineStateRecord.encodedSections`) or,
/// from and for older binaries, the record's JSON object; read in either form.
private struct HandedOverMachine: Codable, Sendable, Equatable {
    var record: MachineStateRecord
    var inSections: Bool

    init(record: MachineStateRecord, inSections: Bool) {
        self.record = record
        self.inSections = inSections
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let sections = try? container.decode(Data.self) else {
            record = try container.decode(MachineStateRecord.self)
            inSections = false
            return
        }
        do { record = try MachineStateRecord.decode([UInt8](sections), from: "the live update's handoff") } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
        inSections = true
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if inSections {
            try container.encode(Data(try record.encodedSections()))
        } else {
            try container.encode(record)
        }
    }
}
