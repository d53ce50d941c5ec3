import CLinux
import Glibc
import LinuxSystem
import Synchronization
import SystemPackage

/// One named region of guest memory, mapped into this process, like a QEMU RAM block.
///
/// A final class because the vCPU, snapshot and userfault threads share it; `@unchecked
/// Sendable` is sound because its base and length never change and guest bytes are only
/// ever copied in and out, never bound to Swift values (the guest writes concurrently).
@safe
package final class GuestRegion: @unchecked Sendable {
    package let name: String
    package let sizeInBytes: UInt64
    /// The pages Engram wrote into this region itself (devices), which KVM's dirty log misses.
    package let hostWrites: HostWriteLog
    /// What holds the bytes: the backing it was made with, or, once frozen as a fork's base, a
    /// private mapping over it.
    package var backing: RegionBacking {
        frozen.load(ordering: .acquiring) ? .forkCopyOnWrite(base: path ?? "the memfd of pid \(getpid()) (the fork's parent)") : initialBacking
    }
    private let initialBacking: RegionBacking
    /// Set once the region became a fork's frozen base, mapped privately here from then on.
    private let frozen = Atomic<Bool>(false)
    /// The file others can open to see this region live, if it has a name in the file system.
    package let path: String?
    private let descriptor: OwnedFileDescriptor?
    /// The snapshot file under a copy-on-write mapping, kept open while mapped.
    private let privateSource: OwnedFileDescriptor?
    private let base: UnsafeMutableRawPointer
    /// The placeholder this region was mapped over (a standby VMM's memory, already registered
    /// with KVM): the addresses are its, and go back to it when this region goes.
    private let placeholder: GuestRegion?
    /// Whether a region is mapped over this one (a placeholder holds one at a time).
    private let occupied = Atomic<Bool>(false)

    /// Opens or creates the backing and maps it whole, shared (private for `.anonymous`). Over
    /// `placeholder` (a region of the same size), the mapping takes the placeholder's addresses,
    /// so memory slots KVM has for them now reach this region's pages.
    package init(name: String, sizeInBytes: UInt64, backing: RegionBacking, over placeholder: GuestRegion? = nil) throws(GuestMemoryError) {
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        guard sizeInBytes > 0, sizeInBytes % pageSize == 0 else {
            throw .invalidSize(region: name, sizeInBytes: sizeInBytes, reason: "must be a non-zero multiple of \(pageSize)")
        }
        let (descriptor, path) = try BackingFile.open(backing, regionName: name, sizeInBytes: sizeInBytes)
        let fd = descriptor?.rawValue ?? -1
        let flags: CInt = fd >= 0 ? MAP_SHARED : (MAP_PRIVATE | MAP_ANONYMOUS)
        // hugetlbfs pages are reserved at mmap, so a short pool is one clear error here rather than
        // a SIGBUS when the guest (or a restore's copy) first touches a page the pool cannot give.
        let hugetlbfs: String? = if case .hugetlbfs(let directory) = backing { directory } else { nil }
        let mapped: UnsafeMutableRawPointer
        do {
            mapped = try Self.map(name: name, sizeInBytes: sizeInBytes, flags: flags, descriptor: fd, offset: 0, over: placeholder,
                                  reserve: hugetlbfs != nil)
        } catch .systemCall(_, _, .noMemory) where hugetlbfs != nil {
            throw .hugePagesUnavailable(region: name, sizeInBytes: sizeInBytes, path: hugetlbfs ?? "")
        }
        self.name = name
        self.sizeInBytes = sizeInBytes
        hostWrites = HostWriteLog(pageCount: sizeInBytes / PageSize.bytes64)
        self.initialBacking = backing
        self.path = path
        self.descriptor = descriptor
        self.privateSource = nil
        self.placeholder = placeholder
        unsafe self.base = mapped
    }

    /// Maps `sizeInBytes` of `descriptor` (-1: anonymous) from `offset`, readable and writable,
    /// at fresh addresses or over `placeholder`'s (MAP_FIXED, after claiming it), and keeps the
    /// pages out of core dumps of the VMM (guest secrets).
    private static func map(
        name: String, sizeInBytes: UInt64, flags: CInt, descriptor: CInt, offset: UInt64, over placeholder: GuestRegion?,
        reserve: Bool = false
    ) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        var address: UnsafeMutableRawPointer? = nil
        var fixed: CInt = 0
        if let placeholder {
            guard placeholder.sizeInBytes == sizeInBytes else {
                throw .invalidSize(region: name, sizeInBytes: sizeInBytes,
                                   reason: "the placeholder \(placeholder.name) holds \(placeholder.sizeInBytes) bytes")
            }
            guard placeholder.placeholder == nil,
                  placeholder.occupied.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
            else { throw .invalidSize(region: name, sizeInBytes: sizeInBytes, reason: "the placeholder \(placeholder.name) is in use") }
            unsafe address = placeholder.base
            fixed = MAP_FIXED
        }
        // SAFETY: a fresh mapping of exactly `sizeInBytes`, or one replacing the placeholder's whole
        // range, which the placeholder's owner gave up by placing this region; owned by the new region.
        let mapped = unsafe mmap(address, Int(sizeInBytes), PROT_READ | PROT_WRITE, flags | fixed | (reserve ? 0 : MAP_NORESERVE), descriptor, off_t(offset))
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else {
            let error = Errno(rawValue: errno)
            if let placeholder { placeholder.vacate() }
            throw .systemCall(name: "mmap", region: name, error)
        }
        _ = unsafe madvise(mapped, Int(sizeInBytes), MADV_DONTDUMP)
        if descriptor < 0 { adviseHugePages(mapped, sizeInBytes) }
        return unsafe mapped
    }

    /// Private anonymous memory asks for transparent huge pages, as QEMU does for its RAM: with
    /// them a disk's 1 MiB writes (copies from guest memory to the page cache) ran 0.91-1.07 of
    /// QEMU's here, on 4 KiB anonymous pages 0.81. Shared backings keep the host's shmem policy (as
    /// Cloud Hypervisor does): a memory file stays as sparse as the guest left it, and a memfd on
    /// huge shmem pages wrote no faster than on 4 KiB ones (docs/results/devices.md).
    private static func adviseHugePages(_ mapped: UnsafeMutableRawPointer, _ sizeInBytes: UInt64) {
        // SAFETY: advice over exactly the fresh mapping; it changes no byte.
        _ = unsafe madvise(mapped, Int(sizeInBytes), MADV_HUGEPAGE)
    }

    /// Gives the placeholder's addresses back its own backing (a failed MAP_FIXED may have unmapped
    /// them; a departing region leaves its pages behind), and frees it for the next region.
    private func vacate() {
        let fd = descriptor?.rawValue ?? -1
        let flags = fd >= 0 ? MAP_SHARED : (MAP_PRIVATE | MAP_ANONYMOUS)
        // SAFETY: remaps exactly the placeholder's own range, which no region holds any more.
        _ = unsafe mmap(base, Int(sizeInBytes), PROT_READ | PROT_WRITE, flags | MAP_FIXED | MAP_NORESERVE, fd, 0)
        _ = unsafe madvise(base, Int(sizeInBytes), MADV_DONTDUMP)
        if fd < 0 { Self.adviseHugePages(base, sizeInBytes) }
        occupied.store(false, ordering: .releasing)
    }

    /// Takes this placeholder itself as a restored region's memory (fresh memfd or hugetlbfs pages
    /// already at the addresses KVM has: nothing is mapped anew, which costs KVM a walk of the
    /// whole range on some hosts). False if a region holds it already, or it has no fresh file of
    /// its own.
    package func claim() -> Bool {
        guard placeholder == nil, descriptor != nil else { return false }
        switch backing {
        case .memfd, .hugetlbfs: break
        default: return false
        }
        return occupied.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    /// After a restore that claimed this placeholder failed: its pages are discarded (they read
    /// as zeros again) and it is free for the next restore.
    package func discardClaim() {
        guard placeholder == nil, let fd = descriptor?.rawValue, occupied.load(ordering: .acquiring) else { return }
        _ = clinux_punch_hole(fd, 0, Int64(sizeInBytes))
        occupied.store(false, ordering: .releasing)
    }

    /// Maps a backing descriptor this process inherited (live update: the previous VMM kept it
    /// open across exec) whole and shared, as `init(name:sizeInBytes:backing:)` mapped it there,
    /// so the guest's memory is the very same pages, neither copied nor read. Takes ownership of
    /// `descriptor` (closed if this throws) and marks it close-on-exec again. The descriptor must
    /// be a regular file or memfd of exactly `sizeInBytes` bytes.
    package init(
        name: String, sizeInBytes: UInt64, backing: RegionBacking, adopting descriptor: CInt, path: String?
    ) throws(GuestMemoryError) {
        let owned = OwnedFileDescriptor(taking: descriptor)
        var info = stat()
        // SAFETY: `info` is a local the call fills in.
        guard unsafe fstat(descriptor, &info) == 0 else { throw .systemCall(name: "fstat", region: name, Errno(rawValue: errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .invalidSize(region: name, sizeInBytes: sizeInBytes, reason: "inherited descriptor \(descriptor) is not a memory file")
        }
        guard UInt64(info.st_size) == sizeInBytes else {
            throw .invalidSize(
                region: name, sizeInBytes: sizeInBytes, reason: "inherited descriptor \(descriptor) holds \(info.st_size) bytes")
        }
        guard fcntl(descriptor, F_SETFD, FD_CLOEXEC) == 0 else { throw .systemCall(name: "fcntl", region: name, Errno(rawValue: errno)) }
        let mapped = try Self.map(name: name, sizeInBytes: sizeInBytes, flags: MAP_SHARED, descriptor: descriptor, offset: 0, over: nil)
        self.name = name
        self.sizeInBytes = sizeInBytes
        hostWrites = HostWriteLog(pageCount: sizeInBytes / PageSize.bytes64)
        self.initialBacking = backing
        self.path = path
        self.descriptor = owned
        self.privateSource = nil
        self.placeholder = nil
        unsafe self.base = mapped
    }

    /// Maps `sizeInBytes` bytes of the open file `descriptor` from `offset` copy-on-write
    /// (MAP_PRIVATE): reads come from the file's page cache, shared with every other such
    /// mapping; the guest's writes stay private. The file itself is never written.
    package init(
        name: String, sizeInBytes: UInt64, copyOnWriteOf descriptor: CInt, at offset: UInt64, path: String, over placeholder: GuestRegion? = nil,
        kind: RegionBacking? = nil
    ) throws(GuestMemoryError) {
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        guard sizeInBytes > 0, sizeInBytes % pageSize == 0, offset % pageSize == 0 else {
            throw .invalidSize(region: name, sizeInBytes: sizeInBytes, reason: "must be a non-zero multiple of \(pageSize) at an aligned offset")
        }
        let copy = dup(descriptor)
        guard copy >= 0 else { throw .systemCall(name: "dup", region: name, Errno(rawValue: errno)) }
        let owned = OwnedFileDescriptor(taking: copy)
        // The caller checked the range lies inside the file.
        let mapped = try Self.map(name: name, sizeInBytes: sizeInBytes, flags: MAP_PRIVATE, descriptor: copy, offset: offset, over: placeholder)
        self.name = name
        self.sizeInBytes = sizeInBytes
        hostWrites = HostWriteLog(pageCount: sizeInBytes / PageSize.bytes64)
        self.initialBacking = kind ?? .snapshotCopyOnWrite(path: path)
        self.path = nil
        // The file does not show the guest's writes, so it is not offered as the region's descriptor.
        self.descriptor = nil
        self.privateSource = owned
        self.placeholder = placeholder
        unsafe self.base = mapped
    }

    deinit {
        if let placeholder {
            placeholder.vacate()  // the addresses stay the placeholder's, registered with KVM
        } else {
            // SAFETY: unmaps exactly the mapping made in init; nothing else holds it once we are gone.
            _ = unsafe munmap(base, Int(sizeInBytes))
        }
    }

    /// The backing descriptor, for sharing it (live update, other processes); nil for anonymous
    /// memory, and once frozen as a fork's base (the file no longer shows this VM's writes).
    package var fileDescriptor: CInt? { frozen.load(ordering: .acquiring) ? nil : descriptor?.rawValue }

    /// Once frozen as a fork's base: the base file, which nobody writes any more (for writing
    /// the base as a snapshot). Nil before.
    package var frozenBaseDescriptor: CInt? { frozen.load(ordering: .acquiring) ? descriptor?.rawValue : nil }

    /// Makes this region's memory a fork's frozen base: the same file is mapped again over the
    /// same addresses, privately, so this VM's writes from now on stay its own and the file keeps
    /// the pages as they are (KVM follows the new mapping, as for a standby's placeholder).
    /// The children map the same descriptor privately too. The VM must be paused.
    package func freezeAsForkBase() throws(GuestMemoryError) {
        guard let fd = descriptor?.rawValue, placeholder == nil, !occupied.load(ordering: .acquiring) else {
            throw .invalidSize(region: name, sizeInBytes: sizeInBytes, reason: "its \(backing.kindName) memory cannot be frozen for a fork")
        }
        guard !frozen.load(ordering: .acquiring) else {
            throw .invalidSize(region: name, sizeInBytes: sizeInBytes,
                               reason: "it is already copy-on-write over a fork's base; snapshot this VM and restore it to fork it again")
        }
        // SAFETY: replaces exactly this region's own mapping with the same file, privately.
        let mapped = unsafe mmap(base, Int(sizeInBytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0)
        guard unsafe mapped != MAP_FAILED else { throw .systemCall(name: "mmap", region: name, Errno(rawValue: errno)) }
        _ = unsafe madvise(base, Int(sizeInBytes), MADV_DONTDUMP)
        frozen.store(true, ordering: .releasing)
    }

    /// The host virtual address of `offset`, for KVM_SET_USER_MEMORY_REGION; the mapping lives as long as `self`.
    package func hostAddress(at offset: RegionOffset) -> UInt64 {
        precondition(offset.rawValue <= sizeInBytes, "offset beyond region \(name)")
        return UInt64(UInt(bitPattern: unsafe base)) + offset.rawValue
    }

    /// Allocates and maps the pages of `range` (bytes, page-aligned) now, so writes to them later
    /// take no page faults (MADV_POPULATE_WRITE, Linux 5.14). False if the kernel cannot; the
    /// pages then fault in on first write as usual.
    @discardableResult
    package func populate(_ range: Range<UInt64>) -> Bool {
        guard !range.isEmpty, range.upperBound <= sizeInBytes else { return false }
        // SAFETY: the range lies inside the mapping (checked above); madvise only touches it.
        return unsafe madvise(base + Int(range.lowerBound), Int(range.count), 23 /* MADV_POPULATE_WRITE */) == 0
    }

    /// Gives the host back the memory behind `range` (bytes, page-aligned, inside the region):
    /// afterwards those pages read as zeros and hold no host memory until the guest writes them.
    /// A shared file or memfd gets a hole punched (every mapping of it sees zeros); private
    /// anonymous memory is dropped (MADV_DONTNEED); a copy-on-write snapshot mapping gets fresh
    /// anonymous memory over the range, because dropping its private pages would show the
    /// snapshot's bytes again. hugetlbfs gives back only the whole huge pages inside the range.
    /// Returns the bytes given back.
    @discardableResult
    package func discard(_ range: Range<UInt64>) throws(GuestMemoryError) -> UInt64 {
        guard range.lowerBound % PageSize.bytes64 == 0, range.upperBound % PageSize.bytes64 == 0, range.upperBound <= sizeInBytes else {
            throw .outsideRegion(name: name, offset: RegionOffset(range.lowerBound), length: UInt64(range.count), sizeInBytes: sizeInBytes)
        }
        guard !range.isEmpty else { return 0 }
        var start = range.lowerBound, end = range.upperBound
        switch backing {
        case .hugetlbfs:
            let huge = backingPageBytes
            start = (start + huge - 1) / huge * huge
            end = end / huge * huge
            guard start < end else { return 0 }
            fallthrough
        case .memfd, .file, .sharedFile:
            guard let fd = descriptor?.rawValue else { return 0 }
            guard clinux_punch_hole(fd, Int64(start), Int64(end - start)) == 0 else {
                throw .systemCall(name: "fallocate(PUNCH_HOLE)", region: name, Errno(rawValue: errno))
            }
        case .anonymous:
            // SAFETY: the range lies inside the mapping (checked above); madvise only touches it.
            guard unsafe madvise(base + Int(start), Int(end - start), MADV_DONTNEED) == 0 else {
                throw .systemCall(name: "madvise(DONTNEED)", region: name, Errno(rawValue: errno))
            }
        case .snapshotCopyOnWrite, .forkCopyOnWrite:
            // SAFETY: replaces exactly a checked range of this region's own mapping.
            let mapped = unsafe mmap(base + Int(start), Int(end - start), PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
            guard unsafe mapped != MAP_FAILED else { throw .systemCall(name: "mmap", region: name, Errno(rawValue: errno)) }
            _ = unsafe madvise(base + Int(start), Int(end - start), MADV_DONTDUMP)
        }
        return end - start
    }

    /// The size of one page of the backing: the huge page size on hugetlbfs, else the base page.
    /// userfaultfd installs memory in these units, and hugetlbfs gives back only whole ones.
    package var backingPageBytes: UInt64 {
        guard case .hugetlbfs = backing, let fd = descriptor?.rawValue else { return PageSize.bytes64 }
        let size = clinux_fstatfs_block_size(fd)
        return size > 0 ? UInt64(size) : 2 << 20
    }

    /// Copies `bytes` into the region at `offset`.
    package func write(_ bytes: [UInt8], at offset: RegionOffset) throws(GuestMemoryError) {
        try checkRange(offset, count: bytes.count)
        // SAFETY: the range was checked against the mapping's length just above.
        unsafe bytes.withUnsafeBytes { source in
            unsafe (base + Int(offset.rawValue)).copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
        hostWrites.mark(offset: offset.rawValue, count: bytes.count)
    }

    /// Copies `count` bytes out of the region at `offset`.
    package func read(count: Int, at offset: RegionOffset) throws(GuestMemoryError) -> [UInt8] {
        try checkRange(offset, count: count)
        // SAFETY: the range was checked against the mapping's length just above.
        return unsafe [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            unsafe buffer.baseAddress!.initialize(
                from: (base + Int(offset.rawValue)).assumingMemoryBound(to: UInt8.self), count: count)
            initialized = count
        }
    }

    /// Runs `body` on a raw view of `count` bytes at `offset`; the pointer must not escape.
    package func withUnsafeBytes<R>(
        at offset: RegionOffset, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        try checkRange(offset, count: count)
        return try unsafe body(UnsafeRawBufferPointer(start: base + Int(offset.rawValue), count: count))
    }

    /// Runs `body` on a writable raw view of `count` bytes at `offset` (nil if the range is outside
    /// the region); the pointer must not escape.
    package func withUnsafeMutableBytes<R, E: Error>(
        at offset: RegionOffset, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R? {
        guard (try? checkRange(offset, count: count)) != nil else { return nil }
        return try unsafe body(UnsafeMutableRawBufferPointer(start: base + Int(offset.rawValue), count: count))
    }

    /// Page ranges that may hold data: the data extents of the region's backing (SEEK_DATA and
    /// SEEK_HOLE, which memfds and most file systems answer); pages outside them are holes that
    /// read as zeros without being touched. All of it without a descriptor (anonymous or
    /// copy-on-write memory) or when the backing cannot say.
    package func dataPages() -> [Range<PageIndex>] {
        let pageCount = sizeInBytes / PageSize.bytes64
        let whole = [PageIndex(0)..<PageIndex(pageCount)]
        guard let fd = fileDescriptor, let extents = try? DataExtents.ranges(of: fd, from: 0, to: sizeInBytes, path: name) else { return whole }
        return extents.compactMap { extent in
            let first = extent.lowerBound / PageSize.bytes64
            let end = min((extent.upperBound + PageSize.bytes64 - 1) / PageSize.bytes64, pageCount)
            return first < end ? PageIndex(first)..<PageIndex(end) : nil
        }
    }

    /// Runs `body` on `count` bytes at `offset`, read-only (nil if the range is outside the region).
    package func withBytes<R, E: Error>(at offset: RegionOffset, count: Int, _ body: (RawSpan) throws(E) -> R) throws(E) -> R? {
        guard (try? checkRange(offset, count: count)) != nil else { return nil }
        // SAFETY: the range was checked just above; the span cannot escape `body`.
        return try body(unsafe RawSpan(_unsafeStart: base + Int(offset.rawValue), byteCount: count))
    }

    /// Copies `span.byteCount` bytes at `offset` into `span`.
    package func copy(at offset: RegionOffset, into span: inout MutableRawSpan) throws(GuestMemoryError) {
        try checkRange(offset, count: span.byteCount)
        // SAFETY: the range was checked just above; the source view does not escape.
        let source = unsafe RawSpan(_unsafeStart: base + Int(offset.rawValue), byteCount: span.byteCount)
        span.copyBytes(from: source)
    }

    /// Runs `body` on `count` bytes at `offset`, to fill them (nil if the range is outside the
    /// region): a copy restore reads pages straight into the mapping through it.
    package func withMutableBytes<R, E: Error>(
        at offset: RegionOffset, count: Int, _ body: (inout MutableRawSpan) throws(E) -> R
    ) throws(E) -> R? {
        guard (try? checkRange(offset, count: count)) != nil else { return nil }
        // SAFETY: the range was checked just above; the span cannot escape `body`.
        var span = unsafe MutableRawSpan(_unsafeStart: base + Int(offset.rawValue), byteCount: count)
        return try body(&span)
    }

    /// The host address of `count` bytes at `offset`, or nil if they run past the region: for
    /// GuestMemory's own checked views (`GuestWindow`, `GuestIOVectors`), which keep `self` alive.
    func pointer(at offset: RegionOffset, count: Int) -> UnsafeMutableRawPointer? {
        guard (try? checkRange(offset, count: count)) != nil else { return nil }
        return unsafe base + Int(offset.rawValue)
    }

    private func checkRange(_ offset: RegionOffset, count: Int) throws(GuestMemoryError) {
        let (end, overflow) = offset.rawValue.addingReportingOverflow(UInt64(count))
        guard count >= 0, !overflow, end <= sizeInBytes else {
            throw .outsideRegion(name: name, offset: offset, length: UInt64(max(0, count)), sizeInBytes: sizeInBytes)
        }
    }
}
