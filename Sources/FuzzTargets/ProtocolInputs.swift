import LinuxSystem
import Machine
import ObjectStore
import Paging
import Transport

enum WorkingSetInput {
    static func run(_ bytes: [UInt8]) { _ = try? WorkingSet(decoding: bytes, origin: "fuzz input") }
}

/// Frames as a peer sends them: the input is written into one end of a socket pair and read
/// from the other by a `FramedConnection`, frame after frame, until it breaks the protocol or ends.
enum FrameInput {
    static let maximumInput = 1 << 16

    static func run(_ bytes: [UInt8]) {
        guard let (writer, reader) = try? StreamSocket.pair(peer: "fuzz peer") else { return }
        // The pair's buffer holds the whole input, so writing it first cannot block.
        guard (try? writer.send(Array(bytes.prefix(maximumInput)))) != nil else { return }
        writer.shutdown()
        let connection = FramedConnection(socket: reader)
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
