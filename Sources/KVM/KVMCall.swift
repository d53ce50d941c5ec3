import CLinux
import Glibc
import SystemPackage

/// The one funnel every KVM ioctl goes through: retries EINTR, names the call on failure.
enum KVMCall {
    /// ioctl with a pointer argument.
    @discardableResult
    static func ioctl(_ fd: CInt, _ request: UInt, _ name: StaticString, _ argument: UnsafeMutableRawPointer?) throws(KVMError) -> CInt {
        try retrying(name) { unsafe clinux_ioctl_ptr(fd, request, argument) }
    }

    /// ioctl with an integer argument.
    @discardableResult
    static func ioctl(_ fd: CInt, _ request: UInt, _ name: StaticString, integer: UInt = 0) throws(KVMError) -> CInt {
        try retrying(name) { clinux_ioctl_int(fd, request, integer) }
    }

    /// ioctl on a local value of a plain C type, passed by address.
    @discardableResult
    static func ioctl<T>(_ fd: CInt, _ request: UInt, _ name: StaticString, value: inout T) throws(KVMError) -> CInt {
        // SAFETY: `value` is a plain C struct the kernel reads or fills within its size.
        try retrying(name) { unsafe withUnsafeMutableBytes(of: &value) { unsafe clinux_ioctl_ptr(fd, request, $0.baseAddress) } }
    }

    /// ioctl on a byte buffer holding a variable-length kernel struct (header plus entries).
    @discardableResult
    static func ioctl(_ fd: CInt, _ request: UInt, _ name: StaticString, buffer: inout [UInt8]) throws(KVMError) -> CInt {
        // SAFETY: the caller sized the buffer for the struct the request reads or fills.
        try retrying(name) { unsafe buffer.withUnsafeMutableBytes { unsafe clinux_ioctl_ptr(fd, request, $0.baseAddress) } }
    }

    /// Runs `call` until it is not interrupted; a negative result becomes a KVMError naming the ioctl.
    private static func retrying(_ name: StaticString, _ call: () -> CInt) throws(KVMError) -> CInt {
        while true {
            let result = call()
            if result >= 0 { return result }
            let error = errno
            if error != EINTR { throw .ioctl(name: "\(name)", Errno(rawValue: error)) }
        }
    }
}
