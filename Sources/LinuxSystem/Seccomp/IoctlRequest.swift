import CLinux

/// An ioctl request a filter may allow, by name (for the documentation and the report) and
/// number. The kernel reads a request as 32 bits, and so does the filter.
package struct IoctlRequest: Sendable, Hashable, CustomStringConvertible {
    package let name: String
    package let number: UInt32

    init(_ name: String, _ number: UInt) {
        self.name = name
        self.number = UInt32(truncatingIfNeeded: number)
    }

    package var description: String { name }

    package static let kvmRun = IoctlRequest("KVM_RUN", CLINUX_KVM_RUN)
    package static let kvmGetRegisters = IoctlRequest("KVM_GET_REGS", CLINUX_KVM_GET_REGS)
    package static let kvmIRQLine = IoctlRequest("KVM_IRQ_LINE", CLINUX_KVM_IRQ_LINE)
    package static let kvmIRQFD = IoctlRequest("KVM_IRQFD", CLINUX_KVM_IRQFD)
    package static let kvmIOEventFD = IoctlRequest("KVM_IOEVENTFD", CLINUX_KVM_IOEVENTFD)
    package static let tapSetOffload = IoctlRequest("TUNSETOFFLOAD", CLINUX_TUNSETOFFLOAD)
    package static let tapSetHeaderSize = IoctlRequest("TUNSETVNETHDRSZ", CLINUX_TUNSETVNETHDRSZ)
    package static let userfaultCopy = IoctlRequest("UFFDIO_COPY", CLINUX_UFFDIO_COPY)
    package static let userfaultZeroPage = IoctlRequest("UFFDIO_ZEROPAGE", CLINUX_UFFDIO_ZEROPAGE)
    package static let userfaultWake = IoctlRequest("UFFDIO_WAKE", CLINUX_UFFDIO_WAKE)
    package static let userfaultUnregister = IoctlRequest("UFFDIO_UNREGISTER", CLINUX_UFFDIO_UNREGISTER)
}
