import CLinux

extension VirtualMachine {
    /// KVM_IRQFD: a write to eventfd `descriptor` pulses interrupt line `gsi` inside the kernel,
    /// so a device thread raises interrupts without an ioctl of its own.
    package func attachInterrupt(eventDescriptor descriptor: CInt, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: descriptor)
        request.gsi = gsi
        try KVMCall.ioctl(self.descriptor.rawValue, CLINUX_KVM_IRQFD, "KVM_IRQFD", value: &request)
    }

    /// KVM_IOEVENTFD: a guest write of `value` (`length` bytes) to MMIO `address` signals eventfd
    /// `descriptor` inside the kernel instead of exiting to the vCPU thread.
    package func attachNotification(eventDescriptor descriptor: CInt, mmioAddress address: UInt64, length: UInt32, value: UInt64) throws(KVMError) {
        var request = kvm_ioeventfd()
        request.addr = address
        request.len = length
        request.fd = descriptor
        request.datamatch = value
        request.flags = CLINUX_KVM_IOEVENTFD_FLAG_DATAMATCH
        try KVMCall.ioctl(self.descriptor.rawValue, CLINUX_KVM_IOEVENTFD, "KVM_IOEVENTFD", value: &request)
    }
}
