import FoundationEssentials

/// Paths handed to another process (a VMM, a display) that may run in another directory.
package enum PathName {
    /// `path` made absolute against this process's working directory.
    package static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}
