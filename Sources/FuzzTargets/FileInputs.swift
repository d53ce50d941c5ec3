import FoundationEssentials
import Glibc
import Inspect
import Machine
import SnapshotFormat
import SystemPackage

/// A file holding the input, for parsers that open paths: one per process, rewritten per input.
enum InputFile {
    static let path: String = {
        // Gone when the process ends (a crash leaves it, with the input that made it).
        atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/engram-fuzz-\(getpid())") }
        return "/dev/shm/engram-fuzz-\(getpid())"
    }()

    static func write(_ bytes: [UInt8]) -> String {
        do {
            let file = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
            _ = try file.closeAfter { try file.writeAll(bytes) }
        } catch {
            // Not the input's fault: the host cannot hold the file (full /dev/shm).
            fatalError("cannot write the fuzz input file \(path): \(error)")
        }
        return path
    }
}

enum ImageInput {
    static func run(_ bytes: [UInt8]) {
        let path = InputFile.write(bytes)
        guard let image = try? ImageOpener.open(path: path, verifyPages: true) else { return }
        for (index, region) in image.regions.enumerated() {
            for page in 0..<min(region.sizeInBytes / 4096, 8) { _ = try? image.read(region: index, at: page * 4096, count: 4096) }
            for range in region.ranges.prefix(4) { _ = try? image.readPhysical(range.guestAddress, count: 64) }
        }
        _ = image.processors.count
        _ = image.physicalRangesDescription
    }
}

enum SnapshotInput {
    static func run(_ bytes: [UInt8]) {
        let path = InputFile.write(bytes)
        guard let reader = try? SnapshotReader(path: path) else { return }
        for region in reader.regions {
            _ = reader.region(named: region.name)
        }
        _ = try? MachineStateRecord.decode(reader.state, snapshotPath: path)
    }
}

enum StateInput {
    static func run(_ bytes: [UInt8]) {
        _ = try? StateSections(decoding: bytes, what: "fuzz input")
        _ = try? MachineStateRecord.decode(bytes, snapshotPath: "fuzz input")
        _ = try? MachinePreview.decode(bytes, from: "fuzz input")
    }
}
