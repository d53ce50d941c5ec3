/// The shared objects a dynamically linked program loads, as the dynamic loader resolves them:
/// what a chroot must hold for the program to start in it.
package enum SharedLibraries {
    /// The x86-64 loader, the interpreter every program here names.
    package static let loader = "/lib64/ld-linux-x86-64.so.2"

    /// The absolute paths of the objects `executable` needs, the loader included (`ld.so --list`).
    package static func of(_ executable: String) throws(SystemError) -> [String] {
        let (termination, output) = try Subprocess.run(loader, arguments: ["--list", executable], timeoutMilliseconds: 10_000)
        let text = String(decoding: output, as: UTF8.self)
        guard termination == .exited(0) else {
            // A statically linked program is not for the loader; it needs nothing beside it.
            if text.contains("not a dynamic executable") { return [] }
            throw SystemError(refusing: executable, because: "the dynamic loader cannot list its libraries: \(text.prefix(200))", .execFormatError)
        }
        var paths: [String] = []
        for line in text.split(separator: "\n") {
            if line.contains("not found") {
                throw SystemError(refusing: executable, because: "a library it needs is missing: \(line.drop(while: \.isWhitespace))", .noSuchFileOrDirectory)
            }
            // "name => /path (0x...)" or "/path (0x...)"; the vDSO has no path.
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if let path = words.first(where: { $0.hasPrefix("/") }) { paths.append(path) }
        }
        if !paths.contains(loader) { paths.append(loader) }
        return paths
    }
}
