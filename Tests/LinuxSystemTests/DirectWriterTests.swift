import Glibc
import Testing
import TestSupport
@testable import LinuxSystem

/// Writes past the page cache: every byte arrives (whole blocks direct, a short tail buffered,
/// more than the staging buffer in several writes), on a file system that takes O_DIRECT (the
/// test directory's) and on tmpfs; the descriptor is left as it was; the blocks do not land in
/// the page cache where O_DIRECT is honoured.
@Suite struct DirectWriterTests {
    static let shm = "/dev/shm"

    private func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) } }

    private func newFile(_ path: String) throws -> OwnedFileDescriptor {
        try OwnedFileDescriptor.open(path, .readWrite, options: [.create, .exclusiveCreate], permissions: [.ownerReadWrite])
    }

    /// Pages of the file at `path` in the page cache (mincore over a mapping of it).
    private func residentPages(_ path: String, size: Int) throws -> Int {
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        let address = unsafe mmap(nil, size, PROT_READ, MAP_SHARED, file.rawValue, 0)
        guard let address = unsafe address, unsafe address != MAP_FAILED else { throw SystemError.last("mmap", on: path) }
        defer { _ = unsafe munmap(address, size) }
        var vector = [UInt8](repeating: 0, count: (size + PageSize.bytes - 1) / PageSize.bytes)
        guard unsafe mincore(address, size, &vector) == 0 else { throw SystemError.last("mincore", on: path) }
        return vector.filter { $0 & 1 != 0 }.count
    }

    @Test(arguments: [0, 100, 4096 * 3, 4096 * 600 + 123])
    func everyByteArrives(count: Int) throws {
        let directory = TemporaryDirectory()
        let writer = DirectWriter(stagingBytes: 4096 * 512)
        let places = [directory.path("file-\(count)")] + (FileStatus(path: Self.shm) != nil ? ["\(Self.shm)/engram-direct-\(getpid())-\(count)"] : [])
        for path in places {
            defer { _ = unlink(path) }
            let file = try newFile(path)
            let flags = fcntl(file.rawValue, F_GETFL)
            let bytes = pattern(count)
            try writer.write(bytes, to: file.rawValue, subject: path)
            #expect(fcntl(file.rawValue, F_GETFL) == flags, "\(path): O_DIRECT left on")
            #expect(try OwnedFileDescriptor.open(path, .readOnly).readWholeFile(limit: 8 << 20, subject: path) == bytes, "\(path)")
        }
    }

    @Test func wholeBlocksBypassThePageCache() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("file")
        let file = try newFile(path)
        let flags = fcntl(file.rawValue, F_GETFL)
        // A file system that does not take O_DIRECT gets buffered writes: nothing to see there.
        guard fcntl(file.rawValue, F_SETFL, flags | __O_DIRECT) == 0 else { return }
        _ = fcntl(file.rawValue, F_SETFL, flags)
        let size = 4096 * 64
        try DirectWriter(stagingBytes: 4096 * 16).write(pattern(size), to: file.rawValue, subject: path)
        #expect(try residentPages(path, size: size) == 0)

        // The control: the same bytes written as usual are in the page cache.
        let buffered = directory.path("buffered")
        try newFile(buffered).writeAll(pattern(size), subject: buffered)
        #expect(try residentPages(buffered, size: size) == size / PageSize.bytes)
    }
}
