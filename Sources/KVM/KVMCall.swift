import CLinux
import Glibc
import SystemPackage

/// The one funnel every KVM ioctl goes through: retries EINTR, names the call on failure.
enum KVMCall {
    /// ioctl with a pointer argument.
    @discardableResult
    static func ioctl(_ fd: CInt, _ request: UInt, _ name: StaticString, _ argument: UnsafeMutableRawPointer?) throws(KVMError) -> CInt {
        while true {
            let result = unsafe clinux_ioctl_ptr(fd, request, argument)
            if result >= 0 { return result }
            if errno == EINTR { continue }
            throw .ioctl(name: "\(name)", Errno(rawValue: errno))
        }
    }

    /// ioctl with an integer argument.
    @discardableResult
    static func ioctl(_ fd: CInt, _ request: UInt, _ name: StaticString, integer: UInt = 0) throws(KVMError) -> CInt {
        while true {
            let result = clinux_ioctl_int(fd, request, integer)
            if result >= 0 { return result }
            if errno == EINTR { continue }
            throw .ioctl(name: "\(name)", Errno(rawValue: errno))
        }
    }

    /// ioctl on a local value of a plain C type, passed by address.
    @discardableResult
    static func ioctl<T>(_ fd: CInt, _ request: UInt, _ name: StaticString, value: inout T) throws(KVMError) -> CInt {
        var result: CInt = 0
        var error: CInt = 0
        // SAFETY: `value` is a plain C struct the kernel reads or fills within its size.
        unsafe withUnsafeMutableBytes(of: &value) { raw in
            repeat {
                result = unsafe clinux_ioctl_ptr(fd, request, raw.baseAddress)
                error = result < 0 ? errno : 0
            } while result < 0 && error == EINTR
        }
        guard result >= 0 else { throw .ioctl(name: "\(name)", Errno(rawValue: error)) }
        return result
    }

    /// ioctl on a byte buffer holding a variable-length kernel struct (header plus entries).
    @discardableResult
    static func ioctl(_ fd: CInt, _ request: UInt, _ name: StaticString, buffer: inout [UInt8]) throws(KVMError) -> CInt {
        var result: CInt = 0
        var error: CInt = 0
        // SAFETY: the caller sized the buffer for the struct the request reads or fills.
        unsafe buffer.withUnsafeMutableBytes { raw in
            repeat {
                result = unsafe clinux_ioctl_ptr(fd, request, raw.baseAddress)
                error = result < 0 ? errno : 0
            } while result < 0 && error == EINTR
        }
        guard result >= 0 else { throw .ioctl(name: "\(name)", Errno(rawValue: error)) }
        return result
    }
}
