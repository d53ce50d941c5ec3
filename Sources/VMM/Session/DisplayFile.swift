import Display
import FoundationEssentials
import GuestMemory
import Machine

/// The file behind `engram run|restore|receive --display FILE`.
package enum DisplayFile {
    /// A new file at `path`, or the display file a previous run left there (replaced); any
    /// other existing file is refused, so a mistyped path never overwrites the user's data.
    static func backing(path: String) throws(MachineError) -> RegionBacking {
        guard FileManager.default.fileExists(atPath: path) else { return .sharedFile(path: path, overwrite: false) }
        guard (try? FramebufferView(path: path)) != nil else {
            throw .display("--display \(path) exists and is not an Engram display file; remove it or choose another path")
        }
        return .sharedFile(path: path, overwrite: true)
    }
}
