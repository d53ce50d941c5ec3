extension GuestMemoryMap {
    /// Copies `count` bytes at guest `address` into `buffer[index...]`, allocating nothing
    /// (device paths reuse one buffer). The guest range must lie in one mapping.
    package func copy(from address: GuestAddress, into buffer: inout [UInt8], at index: Int, count: Int) throws(GuestMemoryError) {
        precondition(index >= 0 && count >= 0 && index <= buffer.count - count, "copy past the end of the buffer")
        guard count > 0 else { return }
        let (region, offset) = try translate(address, length: UInt64(count))
        guard let source = unsafe region.pointer(at: offset, count: count) else { throw .outOfRange(address: address, length: UInt64(count)) }
        // SAFETY: both ranges were checked just above.
        unsafe buffer.withUnsafeMutableBytes { target in
            unsafe (target.baseAddress! + index).copyMemory(from: source, byteCount: count)
        }
    }

    /// Copies `buffer[index..<index+count]` to guest `address`, allocating nothing. The guest
    /// range must lie in one mapping.
    package func copy(_ buffer: [UInt8], from index: Int, count: Int, to address: GuestAddress) throws(GuestMemoryError) {
        precondition(index >= 0 && count >= 0 && index <= buffer.count - count, "copy past the end of the buffer")
        guard count > 0 else { return }
        let (region, offset) = try translate(address, length: UInt64(count))
        guard let target = unsafe region.pointer(at: offset, count: count) else { throw .outOfRange(address: address, length: UInt64(count)) }
        // SAFETY: both ranges were checked just above.
        unsafe buffer.withUnsafeBytes { source in
            unsafe target.copyMemory(from: source.baseAddress! + index, byteCount: count)
        }
        region.hostWrites.mark(offset: offset.rawValue, count: count)
    }
}
