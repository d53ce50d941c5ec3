import CLinux
import Glibc

/// Safe views of page data for the targets that move pages (Paging, ObjectStore, Transport,
/// SnapshotFormat, Inspect): they read into and copy out of `MutableRawSpan`s and `RawSpan`s,
/// which carry their bounds and cannot outlive the memory they view, so those targets need no
/// raw pointer. The few operations spans do not offer are here, each one checked.
extension MutableRawSpan {
    /// Sets every byte to zero.
    package mutating func zeroBytes() {
        // SAFETY: the view covers exactly this span and does not escape the closure.
        unsafe withUnsafeMutableBytes { unsafe $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Copies all of `source` to `offset`; the bytes must fit.
    package mutating func copyBytes(from source: RawSpan, toByteOffset offset: Int = 0) {
        precondition(offset >= 0 && source.byteCount <= byteCount - offset, "\(source.byteCount) bytes at \(offset) of a \(byteCount)-byte span")
        // SAFETY: the destination range was checked just above; neither view escapes.
        unsafe withUnsafeMutableBytes { target in
            unsafe source.withUnsafeBytes { bytes in
                unsafe UnsafeMutableRawBufferPointer(rebasing: target[offset..<offset + bytes.count]).copyMemory(from: bytes)
            }
        }
    }

    /// Runs `body` on bytes `bounds` of this span (checked against its size). One place names
    /// the standard library's sub-span call, whose public name is still settling.
    package mutating func withBytes<R, E: Error>(in bounds: Range<Int>, _ body: (inout MutableRawSpan) throws(E) -> R) throws(E) -> R {
        var part = _mutatingExtracting(bounds)
        return try body(&part)
    }

    /// Copies bytes `range` of `source` to the start; both must fit.
    package mutating func copyBytes(from source: [UInt8], range: Range<Int>) {
        source.withBytes { copyBytes(from: $0.extracting(range)) }
    }

    /// Moves `count` bytes from offset `source` to offset `destination` (the ranges may overlap).
    package mutating func moveBytes(from source: Int, to destination: Int, count: Int) {
        precondition(count >= 0 && source >= 0 && destination >= 0 && source + count <= byteCount && destination + count <= byteCount,
                     "move of \(count) bytes from \(source) to \(destination) in \(byteCount)")
        guard count > 0 else { return }
        // SAFETY: both ranges were checked to lie inside the span; memmove allows overlap.
        unsafe withUnsafeMutableBytes { bytes in _ = unsafe memmove(bytes.baseAddress! + destination, bytes.baseAddress! + source, count) }
    }
}

extension CRC32C {
    /// The CRC32C of `bytes`.
    package static func checksum(_ bytes: RawSpan) -> UInt32 {
        // SAFETY: the view does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe update(0, bytes: $0) }
    }

    /// Continues `crc` over `bytes`.
    package static func update(_ crc: UInt32, bytes: RawSpan) -> UInt32 {
        // SAFETY: the view does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe update(crc, bytes: $0) }
    }
}

extension ZeroPageScan {
    /// Whether every byte of `bytes` is zero.
    package static func isZero(_ bytes: RawSpan) -> Bool {
        // SAFETY: the view does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe isZero($0) }
    }

    /// Whether `bytes` (one page) holds only zeros.
    package static func isZeroPage(_ bytes: RawSpan) -> Bool {
        // SAFETY: the view does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe isZeroPage($0) }
    }
}

extension Array where Element == UInt8 {
    /// Runs `body` on the array's bytes as a span, to fill them. (The standard library marks a
    /// typed span's raw view unsafe because some element types have padding; bytes have none.)
    package mutating func withMutableBytes<R, E: Error>(_ body: (inout MutableRawSpan) throws(E) -> R) throws(E) -> R {
        var elements = mutableSpan
        var bytes = unsafe elements.mutableBytes
        return try body(&bytes)
    }

    /// Runs `body` on the array's bytes as a span (bytes have no padding, so the raw view is safe).
    package func withBytes<R, E: Error>(_ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try body(unsafe span.bytes)
    }
}

extension RawSpan {
    /// The offset of the first occurrence of `pattern` (not empty) at or after `start`, or nil.
    package func firstOffset(of pattern: [UInt8], from start: Int) -> Int? {
        precondition(!pattern.isEmpty && start >= 0 && start <= byteCount, "search for \(pattern.count) bytes from \(start) of \(byteCount)")
        // SAFETY: memmem reads [start, byteCount) of this span and the whole pattern, both alive
        // for the call; the result points inside the span.
        return unsafe withUnsafeBytes { haystack in
            unsafe pattern.withUnsafeBytes { needle in
                guard let base = haystack.baseAddress,
                      let found = unsafe clinux_memmem(base + start, byteCount - start, needle.baseAddress!, needle.count)
                else { return nil }
                return unsafe UnsafeRawPointer(found) - base
            }
        }
    }

    /// Whether `other` holds exactly the same bytes.
    package func bytesEqual(_ other: RawSpan) -> Bool {
        guard byteCount == other.byteCount else { return false }
        guard byteCount > 0 else { return true }
        // SAFETY: both views cover `byteCount` bytes and do not escape.
        return unsafe withUnsafeBytes { left in
            unsafe other.withUnsafeBytes { right in unsafe memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0 }
        }
    }
}
