import FoundationEssentials

/// `.engram/packs/<id>.index`: the chunks a pack object holds, so a later upload can reuse any
/// of them instead of storing the same contents again (deduplication across snapshots).
package struct PackIndex: Codable, Sendable {
    package struct Entry: Codable, Sendable {
        package var hash: String
        package var offset: UInt64
        package var length: UInt64
        package var pages: String
    }

    package var pack: String
    package var chunks: [Entry]

    /// Where packs and their indexes live in a bucket, beside every snapshot's prefix.
    package static let prefix = ".engram/packs/"

    /// The index as JSON; a failure to encode is an error, never an empty object in the store.
    package func encoded() throws(ObjectSnapshotError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(self)) } catch { throw .local("cannot encode pack index \(pack): \(error)") }
    }

    package static func decode(_ bytes: [UInt8]) -> PackIndex? { try? JSONDecoder().decode(PackIndex.self, from: Data(bytes)) }
}
