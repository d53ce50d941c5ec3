import Foundation

/// Ends processes a test started indirectly and could not learn the ids of (a fork's children,
/// when the answer naming them did not arrive): those whose command line contains `argument`
/// and that hold a file open under `directory` (their console logs), found through /proc.
public enum ProcessSweep {
    @discardableResult
    public static func kill(commandContaining argument: String, holdingFilesUnder directory: String) -> [Int32] {
        let manager = FileManager.default
        let prefix = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path + "/"
        var killed: [Int32] = []
        for entry in (try? manager.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(),
                  let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
                  String(decoding: commandLine.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(argument) else { continue }
            let descriptors = (try? manager.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            let holds = descriptors.contains { fd in
                ((try? manager.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? "").hasPrefix(prefix)
            }
            if holds, Foundation.kill(pid, SIGKILL) == 0 { killed.append(pid) }
        }
        return killed
    }
}
