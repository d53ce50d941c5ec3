import Glibc

/// A whole file mapped read-only and shared (mmap PROT_READ MAP_SHARED), so this process sees
/// another's writes to it at once: a display file the guest draws into. The bytes are racy
/// memory (the writer changes them while they are read): they are only ever compared and
/// copied out, never bound to Swift values. Every offset is checked against the mapping.
///
/// `@unchecked Sendable`: the base and length never change after init; reads need no lock.
@safe
package final class ReadOnlyMapping: @unchecked Sendable {
    private let base: UnsafeRawPointer
    /// The mapping's length: the file's size when it was mapped.
    package let sizeInBytes: Int

    /// Maps the file at `path` whole.
    package init(path: String) throws(SystemError) {
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        var info = stat()
        // SAFETY: `info` is a local the call fills in.
        guard unsafe fstat(file.rawValue, &info) == 0 else { throw .last("fstat", on: path) }
        let size = Int(info.st_size)
        guard size > 0 else { throw SystemError("mmap", on: path, .invalidArgument) }
        // SAFETY: a fresh read-only mapping of the whole file; owned and unmapped by this object.
        // The mapping keeps the file alive once the descriptor closes.
        let mapped = unsafe mmap(nil, size, PROT_READ, MAP_SHARED, file.rawValue, 0)
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else { throw .last("mmap", on: path) }
        unsafe base = UnsafeRawPointer(mapped)
        sizeInBytes = size
    }

    /// Maps `length` bytes at `offset` (a multiple of the page size) of the open file `descriptor`.
    package init(descriptor: CInt, offset: UInt64, length: Int, subject: String) throws(SystemError) {
        precondition(length > 0, "a mapping of at least one byte")
        // SAFETY: a fresh read-only mapping; owned and unmapped by this object.
        let mapped = unsafe mmap(nil, length, PROT_READ, MAP_SHARED, descriptor, off_t(offset))
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else { throw .last("mmap", on: subject) }
        unsafe base = UnsafeRawPointer(mapped)
        sizeInBytes = length
    }

    deinit {
        // SAFETY: unmaps exactly the mapping made in init; nothing else holds it once we are gone.
        _ = unsafe munmap(UnsafeMutableRawPointer(mutating: base), sizeInBytes)
    }

    /// The little-endian u32 at `offset`.
    package func littleEndianUInt32(at offset: Int) -> UInt32 {
        check(offset, 4)
        // SAFETY: the four bytes lie inside the mapping (checked above).
        return unsafe base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
    }

    /// Runs `body` on `count` bytes from `offset`.
    package func withBytes<R>(at offset: Int, count: Int, _ body: (RawSpan) -> R) -> R {
        check(offset, count)
        // SAFETY: the range lies inside the mapping (checked above); the span cannot escape `body`.
        return body(unsafe RawSpan(_unsafeStart: base + offset, byteCount: count))
    }

    /// `count` bytes from `offset`, copied.
    package func bytes(at offset: Int, count: Int) -> [UInt8] {
        check(offset, count)
        // SAFETY: the range lies inside the mapping (checked above).
        return unsafe [UInt8](UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    /// Copies `count` bytes from `offset` into `buffer`'s storage from byte `destination` on.
    package func copy<Element: BitwiseCopyable>(at offset: Int, count: Int, into buffer: inout [Element], atByte destination: Int) {
        check(offset, count)
        precondition(destination >= 0 && destination + count <= buffer.count * MemoryLayout<Element>.stride, "copy past the buffer's end")
        // SAFETY: both ranges were checked to lie inside their storage; the view does not escape.
        unsafe buffer.withUnsafeMutableBytes { unsafe $0.baseAddress!.advanced(by: destination).copyMemory(from: base + offset, byteCount: count) }
    }

    /// True if `count` bytes from `offset` equal `shadow`'s from `shadowOffset`.
    package func matches(at offset: Int, count: Int, _ shadow: [UInt8], at shadowOffset: Int) -> Bool {
        check(offset, count)
        precondition(shadowOffset >= 0 && shadowOffset + count <= shadow.count, "compare past the shadow's end")
        // SAFETY: both ranges were checked to lie inside their storage.
        return unsafe shadow.withUnsafeBytes { unsafe memcmp($0.baseAddress! + shadowOffset, base + offset, count) == 0 }
    }

    /// Copies `count` bytes from `offset` into `shadow` at `shadowOffset` if they differ; true if they did.
    package func refresh(at offset: Int, count: Int, _ shadow: inout [UInt8], at shadowOffset: Int) -> Bool {
        guard !matches(at: offset, count: count, shadow, at: shadowOffset) else { return false }
        copy(at: offset, count: count, into: &shadow, atByte: shadowOffset)
        return true
    }

    private func check(_ offset: Int, _ count: Int) {
        precondition(offset >= 0 && count >= 0 && offset <= sizeInBytes - count, "range \(offset)+\(count) outside a \(sizeInBytes)-byte mapping")
    }
}
