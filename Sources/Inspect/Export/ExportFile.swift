import LinuxSystem
import SystemPackage

/// An output file that appears whole or not at all (`AtomicFile`: mode 0600, since guest
/// memory holds secrets; written under a temporary name beside its destination, then renamed).
package final class ExportFile {
    package let path: String
    private let file: AtomicFile

    package init(path: String) throws(InspectError) {
        self.path = path
        do { file = try AtomicFile(path: path) } catch { throw InspectError(error) }
    }

    /// Sets the file's size; what is never written stays a hole that reads as zeros.
    package func setSize(_ size: UInt64) throws(InspectError) {
        do { try file.file.descriptor.resize(to: Int64(size)) } catch {
            throw .systemCall(path: path, name: "ftruncate", errno: (error as? Errno ?? .ioError).rawValue)
        }
    }

    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: RawSpan, at offset: UInt64) throws(InspectError) {
        do { try PositionedIO.writeAll(file.file.rawValue, bytes, at: offset, subject: path) } catch { throw InspectError(error) }
    }

    /// Writes an array at `offset`.
    package func write(_ bytes: [UInt8], at offset: UInt64) throws(InspectError) {
        do { try PositionedIO.writeAll(file.file.rawValue, bytes, at: offset, subject: path) } catch { throw InspectError(error) }
    }

    /// Flushes the file and gives it its final name.
    package func commit() throws(InspectError) {
        do { try file.commit() } catch { throw InspectError(error) }
    }
}
