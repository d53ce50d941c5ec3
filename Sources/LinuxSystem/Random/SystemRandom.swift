import CLinux
import Glibc

/// The kernel's random generator (getrandom(2)), filling caller-owned buffers.
package enum SystemRandom {
    /// Fills `buffer[index..<index+count]` with random bytes without allocating; blocks only
    /// before the kernel's pool is first initialised.
    package static func fill(_ buffer: inout [UInt8], at index: Int, count: Int) {
        precondition(index >= 0 && count >= 0 && index <= buffer.count - count, "fill past the end of the buffer")
        var done = 0
        while done < count {
            // SAFETY: the range written lies inside `buffer` (checked above).
            let got = unsafe buffer.withUnsafeMutableBytes { bytes in
                unsafe clinux_getrandom(bytes.baseAddress! + index + done, count - done)
            }
            if got < 0 {
                // Only EINTR can happen for a valid buffer without GRND_NONBLOCK.
                precondition(errno == EINTR, "getrandom failed: \(errno)")
                continue
            }
            done += got
        }
    }
}
