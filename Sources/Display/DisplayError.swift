import LinuxSystem
import Devices
import SystemPackage

/// Why a display file could not be shown, saved or served; each message names the file, address
/// or peer and what was expected.
package enum DisplayError: Error, CustomStringConvertible, Equatable {
    /// The display file cannot be opened or examined (`step` is the failing call).
    case fileOpen(path: String, step: String, Errno)
    /// The display file is not a regular file.
    case notAFile(path: String)
    /// The display file is shorter than its header.
    case fileTooSmall(path: String, sizeInBytes: Int)
    /// The header was refused; the format error's message names the file.
    case badHeader(FramebufferFormatError)
    /// A PNG could not be written to `path` (`step` is the failing call).
    case fileWrite(path: String, step: String, Errno)
    /// zlib refused a call (`call` with its return code).
    case compression(call: String, code: Int32)
    /// HOST:PORT cannot be listened on.
    case address(String, reason: String)
    /// Another program listens on HOST:PORT already.
    case addressInUse(String)
    /// A socket call failed (`peer` is the other end, or the address listened on).
    case socket(peer: String, call: String, Errno)
    /// The peer closed the connection.
    case closed(peer: String)
    /// The peer sent something RFB does not allow, or Engram does not support.
    case protocolViolation(peer: String, reason: String)
    /// The peer failed VNC authentication.
    case authentication(peer: String, reason: String)
    /// A thread could not be started.
    case thread(SystemError)

    package var description: String {
        switch self {
        case .fileOpen(let path, let step, let errno):
            "display file \(path): \(step) failed: \(errno)"
        case .notAFile(let path):
            "display file \(path) is not a regular file; expected the display file a VMM writes"
        case .fileTooSmall(let path, let size):
            "display file \(path) is \(size) bytes; expected at least its \(FramebufferHeader.size)-byte header and the pixels"
        case .badHeader(let error):
            error.description
        case .fileWrite(let path, let step, let errno):
            "cannot write \(path): \(step) failed: \(errno)"
        case .compression(let call, let code):
            "zlib \(call) failed with code \(code)"
        case .address(let text, let reason):
            "\(text) cannot be listened on: \(reason); expected HOST:PORT with a local address"
        case .addressInUse(let text):
            "\(text) is in use; another program listens there (pick another port)"
        case .socket(let peer, let call, let errno):
            "\(call) (\(peer)) failed: \(errno)"
        case .closed(let peer):
            "\(peer) closed the connection"
        case .protocolViolation(let peer, let reason):
            "\(peer) broke the RFB protocol: \(reason)"
        case .authentication(let peer, let reason):
            "VNC authentication of \(peer) failed: \(reason)"
        case .thread(let error):
            "cannot start a thread: \(error)"
        }
    }
}
