import GuestMemory
import LinuxSystem
import Machine
import ObjectStore
import Paging
import SnapshotFormat
import Transport

enum WorkingSetInput {
    static func run(_ bytes: [UInt8]) { _ = try? WorkingSet(decoding: bytes, origin: "fuzz input") }
}

/// Frames as a peer sends them: the input is written into one end of a socket pair and read
/// from the other by a `FramedConnection`, frame after frame, until it breaks the protocol or ends.
/// Then the same bytes go to a migration's destination twice, as its control connection and as
/// one of its page channels would read them: pages and zero pages into two small regions, pass
/// ends, the state.
enum FrameInput {
    static let maximumInput = 1 << 16

    static func run(_ bytes: [UInt8]) {
        readFrames(bytes)
        receiveMigration(bytes, channel: false)
        receiveMigration(bytes, channel: true)
    }

    /// A connection whose peer sent `bytes` and closed.
    private static func connection(_ bytes: [UInt8]) -> FramedConnection? {
        guard let (writer, reader) = try? StreamSocket.pair(peer: "fuzz peer") else { return nil }
        // The pair's buffer holds the whole input, so writing it first cannot block.
        guard (try? writer.send(Array(bytes.prefix(maximumInput)))) != nil else { return nil }
        writer.shutdown()
        return FramedConnection(socket: reader)
    }

    /// A migration's regions (made once): 64 pages and 8, as a plan would name them.
    static let regions: [GuestRegion] = (try? SnapshotMemoryLoader.empty(shapes: [
        SnapshotRegionShape(name: "ram", sizeInBytes: 64 * 4096, placements: []),
        SnapshotRegionShape(name: "extra", sizeInBytes: 8 * 4096, placements: []),
    ])) ?? []

    private static func receiveMigration(_ bytes: [UInt8], channel: Bool) {
        guard !regions.isEmpty, let connection = connection(bytes) else { return }
        var receiver = MigrationReceiver(link: MigrationLink(connection: connection), regions: regions)
        // One channel: its pass ends wait for no other.
        if channel { try? receiver.receiveChannel(0, barrier: PassBarrier(channels: 1)) } else { _ = try? receiver.receiveUntilState() }
    }

    private static func readFrames(_ bytes: [UInt8]) {
        guard let connection = connection(bytes) else { return }
        for _ in 0..<64 {
            guard let header = try? connection.readFrameHeader(maximumLength: 8 << 20) else { return }
            if header.type == .pages {
                guard let count = try? connection.continuePages(length: header.length) else { return }
                for index in 0..<count {
                    _ = connection.pageRecord(index)
                    guard (try? connection.readPayload(4096)) != nil else { return }
                }
                continue
            }
            guard let payload = try? connection.readPayload(header.length) else { return }
            switch header.type {
            case .manifest: _ = try? SnapshotManifest(decoding: payload, peer: "fuzz peer")
            case .migrationPlan: _ = try? MigrationPlan.decode(payload, peer: "fuzz peer")
            case .machineState: _ = try? MachinePreview.decode(payload, from: "fuzz peer")
            case .error: _ = FramedConnection.errorMessage(payload)
            default: break
            }
        }
    }
}

enum ObjectStoreInput {
    static func run(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        switch selector % 5 {
        case 0: _ = S3Replies.error(rest, fallback: "fuzz")
        case 1: _ = try? S3Replies.listPage(rest)
        case 2: _ = try? S3Replies.uploadID(rest)
        case 3: _ = try? ObjectSnapshotManifest.decode(rest, origin: "fuzz input")
        default: _ = PackIndex.decode(rest)
        }
    }
}
