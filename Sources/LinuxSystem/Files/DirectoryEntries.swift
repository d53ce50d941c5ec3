import Glibc

extension FileSystem {
    /// The names in `directory` (readdir(3)), without `.` and `..`; nil with errno set if the
    /// directory cannot be opened.
    package static func entries(of directory: String) -> [String]? {
        guard let stream = unsafe opendir(directory) else { return nil }
        defer { _ = unsafe closedir(stream) }
        var names: [String] = []
        // SAFETY: readdir's entry stays valid until the next readdir on `stream`; its name is copied at once.
        while let entry = unsafe readdir(stream) {
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) { raw in
                unsafe String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `path` with every symbolic link and `.` or `..` resolved (realpath(3)); nil if it does not exist.
    package static func resolvedPath(_ path: String) -> String? {
        guard let resolved = unsafe realpath(path, nil) else { return nil }
        defer { unsafe free(resolved) }
        return unsafe String(cString: resolved)
    }

    /// The directory part of `path` ("." for a bare name, "/" for a file at the root).
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of `path`.
    package static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
