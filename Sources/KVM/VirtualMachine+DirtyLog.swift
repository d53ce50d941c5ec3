import LinuxSystem
import CLinux
import GuestMemory

extension VirtualMachine {
    /// Turns KVM's log of guest writes on or off for `slot`, by re-issuing
    /// KVM_SET_USER_MEMORY_REGION for the slot's mapping with KVM_MEM_LOG_DIRTY_PAGES set or
    /// clear (a flags-only change: the guest's memory stays as it is). A log turned on starts empty.
    package func setDirtyLogging(_ enabled: Bool, slot: UInt32) throws(KVMError) {
        guard let current = slots.withLock({ $0[slot] }) else {
            throw .ioctl(name: "KVM_SET_USER_MEMORY_REGION (slot \(slot) is not mapped)", .invalidArgument)
        }
        guard current.logsDirtyPages != enabled else { return }
        try map(current.mapping, slot: slot, logDirtyPages: enabled)
    }

    /// Whether KVM logs the guest's writes to `slot`.
    package func isLoggingDirtyPages(slot: UInt32) -> Bool {
        slots.withLock { $0[slot]?.logsDirtyPages ?? false }
    }

    /// KVM_GET_DIRTY_LOG: the pages of `slot` the guest wrote since logging was turned on or
    /// since the previous call, which clears the log. Bit i is the slot's i-th 4 KiB page,
    /// counted from its guest address; KVM's bitmap has PageBitmap's word layout, so the bytes
    /// are taken as they are.
    package func dirtyPages(slot: UInt32) throws(KVMError) -> PageBitmap {
        guard let current = slots.withLock({ $0[slot] }), current.logsDirtyPages else {
            throw .ioctl(name: "KVM_GET_DIRTY_LOG (slot \(slot) does not log dirty pages)", .invalidArgument)
        }
        let pageCount = current.mapping.sizeInBytes / PageSize.bytes64
        var bytes = [UInt8](repeating: 0, count: Int(PageBitmap.byteCount(pageCount: pageCount)))
        let descriptor = descriptor.rawValue
        // SAFETY: KVM writes round_up(pages, 64) / 8 bytes, the buffer's exact size, during the
        // call; the pointer does not outlive it.
        let result: Result<Void, KVMError> = unsafe bytes.withUnsafeMutableBytes { buffer in
            // SAFETY: kvm_dirty_log holds the buffer's address only for the ioctl below.
            var log = unsafe kvm_dirty_log()
            unsafe log.slot = slot
            unsafe log.dirty_bitmap = buffer.baseAddress
            do throws(KVMError) {
                try unsafe KVMCall.ioctl(descriptor, CLINUX_KVM_GET_DIRTY_LOG, "KVM_GET_DIRTY_LOG", value: &log)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
        // KVM never sets a bit past the slot's last page.
        guard let bitmap = PageBitmap(pageCount: pageCount, littleEndianBytes: bytes) else {
            throw .ioctl(name: "KVM_GET_DIRTY_LOG (bits past slot \(slot)'s \(pageCount) pages)", .ioError)
        }
        return bitmap
    }
}
