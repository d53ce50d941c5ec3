import FoundationEssentials
import Glibc
import GuestMemory
import SnapshotFormat
import SystemPackage

/// Diff-chain resolution: the input is up to three sparse snapshot files, written as top.snap,
/// (middle.snap) and base.snap in one directory (holes between extents, each file ending where its
/// last extent ends, at most 4 MiB in); the chain is
/// opened from top.snap, following each diff's parent by name and identity, and every page it
/// stores is read and checked. A snapshot keeps its tables at the start and its page area and
/// state 2 MiB in, so a file is given as extents: a count byte, then each file as a count byte
/// of extents, each a 4-byte offset, a 2-byte length (both little-endian) and its bytes.
enum ChainInput {
    static let names = ["top.snap", "middle.snap", "base.snap"]
    /// Extents start within the first 4 MiB.
    static let paddedSize: Int64 = 4 << 20
    static let directory: String = {
        let path = "/dev/shm/engram-fuzz-chain-\(getpid())"
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            fatalError("cannot make the fuzz target's directory \(path): \(error)")
        }
        // Gone when the process ends (a crash leaves it, with the input that made it).
        atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/engram-fuzz-chain-\(getpid())") }
        return path
    }()

    /// A file as extents: (offset, bytes).
    typealias File = [(offset: Int, bytes: [UInt8])]

    /// The files an input holds (at most three, each of at most eight extents).
    static func files(_ bytes: [UInt8]) -> [File] {
        var rest = bytes[...]
        func integer(_ width: Int) -> Int? {
            guard rest.count >= width else { return nil }
            defer { rest = rest.dropFirst(width) }
            return rest.prefix(width).enumerated().reduce(0) { $0 | Int($1.element) << ($1.offset * 8) }
        }
        guard let count = integer(1) else { return [] }
        var files: [File] = []
        for _ in 0..<(1 + count % names.count) {
            guard let extents = integer(1) else { break }
            var file: File = []
            for _ in 0..<(extents % 9) {
                guard let offset = integer(4), let length = integer(2) else { break }
                file.append((offset % Int(paddedSize), Array(rest.prefix(length))))
                rest = rest.dropFirst(min(length, rest.count))
            }
            files.append(file)
        }
        return files
    }

    /// The input that holds `files`, as `files(_:)` reads it.
    static func input(_ files: [File]) -> [UInt8] {
        func le(_ value: Int, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        var bytes = le(files.count - 1, 1)
        for file in files {
            bytes += le(file.count, 1)
            for extent in file { bytes += le(extent.offset, 4) + le(extent.bytes.count, 2) + extent.bytes }
        }
        return bytes
    }

    static func run(_ bytes: [UInt8]) {
        for name in names { try? FileManager.default.removeItem(atPath: directory + "/" + name) }
        let files = files(bytes)
        guard !files.isEmpty else { return }
        // The top, then (with three) the middle, and the base last: a two-file chain is top over base.
        let named = files.count == 3 ? names : Array(names.prefix(1)) + Array(names.suffix(files.count - 1))
        for (file, name) in zip(files, named) {
            let path = directory + "/" + name
            do {
                let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
                try fd.closeAfter {
                    let size = file.map { $0.offset + $0.bytes.count }.max() ?? 0
                    guard ftruncate(fd.rawValue, off_t(size)) == 0 else { throw Errno(rawValue: errno) }
                    for extent in file { _ = try fd.writeAll(toAbsoluteOffset: Int64(extent.offset), extent.bytes) }
                }
            } catch {
                fatalError("cannot write the fuzz input file \(path): \(error)")  // the host's fault (full /dev/shm), not the input's
            }
        }
        guard let chain = try? SnapshotChain(path: directory + "/" + names[0]) else { return }
        for (index, region) in chain.regions.enumerated() {
            for page in 0..<min(region.pageCount, 8) { _ = chain.owner(region: index, page: PageIndex(page)) }
        }
        _ = try? chain.verifyAllPages()
        _ = chain.state.count
    }
}
