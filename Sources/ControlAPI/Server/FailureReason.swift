import FoundationEssentials
import NIOCore
import SystemPackage

/// Turns a lower-level error (NIO, the file system) into a short phrase for a one-line message.
enum FailureReason {
    /// "No such file or directory", "Connection refused", ...: one line, without errno boilerplate.
    static func text(_ error: any Error) -> String {
        let raw: String
        switch error {
        case let error as IOError:
            raw = Errno(rawValue: error.errnoCode).description
        case let error as CocoaError:
            if let posix = error.underlying as? POSIXError {
                raw = Errno(rawValue: posix.code.rawValue).description
            } else if let path = error.filePath {
                raw = "\(path): file system error \(error.code.rawValue)"
            } else {
                raw = "file system error \(error.code.rawValue)"
            }
        case let error as POSIXError:
            raw = Errno(rawValue: error.code.rawValue).description
        default:
            raw = "\(error)"
        }
        return raw.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
