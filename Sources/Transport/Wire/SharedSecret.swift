import Crypto
import LinuxSystem
import SystemPackage

/// The secret both ends of the page protocol know, read from a file only its owner can read.
package struct SharedSecret: Sendable {
    private let bytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: bytes) }

    /// Fewest bytes a secret may have.
    package static let minimumLength = 16

    package init(bytes: [UInt8]) { self.bytes = bytes }

    /// Reads the secret at `path` (one line; a final newline is dropped). The file must be a
    /// regular file (a FIFO or device would make the reader wait or read forever; it is opened
    /// without blocking and refused) not readable or writable by group or others, like an ssh key.
    package static func load(path: String) throws(TransportError) -> SharedSecret {
        let bytes = try readPrivateFile(path, holding: "the secret")
        var secret = bytes
        while let last = secret.last, last == 10 || last == 13 { secret.removeLast() }
        guard secret.count >= minimumLength else {
            throw .secret(path: path, reason: "it holds \(secret.count) bytes; at least \(minimumLength) are needed")
        }
        return SharedSecret(bytes: secret)
    }

    /// The first 64 KiB of `path`, a regular file that only its owner may read or write (like an
    /// ssh key): a FIFO or device is refused at once rather than waited on, and a file group or
    /// others can read is refused with the chmod that fixes it. `holding` names what it holds.
    package static func readPrivateFile(_ path: String, holding what: String) throws(TransportError) -> [UInt8] {
        do {
            let file = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
            return try file.closeAfter { () throws -> [UInt8] in
                let status = try file.stat()
                guard status.mode.rawValue & 0o170000 == 0o100000 else {
                    throw TransportError.secret(path: path, reason: "it is not a regular file; give a file holding \(what)")
                }
                guard status.mode.rawValue & 0o077 == 0 else {
                    throw TransportError.secret(path: path, reason: "group or others may read or write it (mode \(String(status.mode.rawValue & 0o777, radix: 8))); chmod 600 it")
                }
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                let count = try file.read(into: &buffer)
                return Array(buffer[0..<count])
            }
        } catch let error as TransportError {
            throw error
        } catch {
            throw .secret(path: path, reason: "cannot read it: \(error)")
        }
    }

    /// HMAC-SHA256 of `parts` one after another.
    func proof(_ label: String, _ parts: [UInt8]...) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array(label.utf8))
        for part in parts { hmac.update(data: part) }
        return Array(hmac.finalize())
    }

    /// True if `candidate` is the proof of `parts` (compared in constant time).
    func verify(_ candidate: [UInt8], _ label: String, _ parts: [UInt8]...) -> Bool {
        var data = Array(label.utf8)
        for part in parts { data += part }
        return HMAC<SHA256>.isValidAuthenticationCode(candidate, authenticating: data, using: key)
    }
}
