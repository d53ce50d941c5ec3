import Glibc
import LinuxSystem
import Testing

/// Where a sparse file holds data, on ext4 (data still in the page cache included) and on tmpfs:
/// the same ranges either way.
@Suite struct DataExtentsTests {
    /// A 4 MiB file with data at [8 KiB, 16 KiB) and [1 MiB, 1 MiB + 4 KiB), freshly written.
    private func sparseFile(at path: String) -> CInt {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        #expect(ftruncate(fd, 4 << 20) == 0)
        let page = [UInt8](repeating: 0xAB, count: 4096)
        for offset in [8192, 12288, 1 << 20] { #expect(pwrite(fd, page, 4096, off_t(offset)) == 4096) }
        return fd
    }

    private func check(_ directory: String) throws {
        let path = directory + "/sparse-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = sparseFile(at: path)
        defer { close(fd); unlink(path) }
        let ranges = try DataExtents.ranges(of: fd, from: 0, to: 4 << 20, path: path)
        let expected: [Range<UInt64>] = [8192..<16384, 1_048_576..<1_052_672]
        #expect(ranges.map(\.lowerBound) == expected.map(\.lowerBound) && ranges.map(\.upperBound) == expected.map(\.upperBound), "\(directory): \(ranges)")
        let clipped = try DataExtents.ranges(of: fd, from: 12288, to: 1 << 20, path: path)
        #expect(clipped.map(\.lowerBound) == [12288] && clipped.map(\.upperBound) == [16384], "clipped to the range asked: \(clipped)")
        #expect(try DataExtents.ranges(of: fd, from: 2 << 20, to: 4 << 20, path: path).isEmpty)
    }

    @Test func ext4ReportsDataNotYetWrittenBack() throws {
        try check("/var/tmp")  // ext4 here
    }

    @Test(.enabled(if: access("/dev/shm", W_OK) == 0, "needs /dev/shm"))
    func tmpfsReportsTheSameRanges() throws {
        try check("/dev/shm")
    }
}
