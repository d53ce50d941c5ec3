import CLinux

extension VirtualCPU {
    /// Reads one state block as the kernel struct's bytes.
    package func stateBlock(_ block: VCPUStateBlock) throws(KVMError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: block.size(extendedStateSize: extendedStateSize))
        try KVMCall.ioctl(descriptor.rawValue, block.requests.get, block.name.get, buffer: &bytes)
        return bytes
    }

    /// Writes one state block back; its size must be what `stateBlock` returned.
    package func setStateBlock(_ block: VCPUStateBlock, _ bytes: [UInt8]) throws(KVMError) {
        guard bytes.count == block.size(extendedStateSize: extendedStateSize) else {
            throw .ioctl(name: "\(block.name.set) (\(bytes.count) bytes saved, \(block.size(extendedStateSize: extendedStateSize)) expected)", .invalidArgument)
        }
        var copy = bytes
        try KVMCall.ioctl(descriptor.rawValue, block.requests.set, block.name.set, buffer: &copy)
    }

    /// KVM_GET_MSRS for `indices`; MSRs KVM cannot read are left out.
    package func modelSpecificRegisters(_ indices: [UInt32]) throws(KVMError) -> [(index: UInt32, value: UInt64)] {
        let header = MemoryLayout<kvm_msrs>.size, stride = MemoryLayout<kvm_msr_entry>.stride
        var buffer = [UInt8](repeating: 0, count: header + indices.count * stride)
        // SAFETY: writes stay within the buffer sized for `indices.count` entries.
        unsafe buffer.withUnsafeMutableBytes { raw in
            unsafe raw.storeBytes(of: UInt32(indices.count), as: UInt32.self)
            for (i, index) in indices.enumerated() { unsafe raw.storeBytes(of: index, toByteOffset: header + i * stride, as: UInt32.self) }
        }
        let read = Int(try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_MSRS, "KVM_GET_MSRS", buffer: &buffer))
        // SAFETY: the kernel filled `read` entries after the header.
        return unsafe buffer.withUnsafeBytes { raw in
            (0..<min(read, indices.count)).map { i in
                let entry = unsafe raw.loadUnaligned(fromByteOffset: header + i * stride, as: kvm_msr_entry.self)
                return (entry.index, entry.data)
            }
        }
    }
}
