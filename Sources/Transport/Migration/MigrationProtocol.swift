/// Constants of the migration protocol, version 1 (docs/MIGRATION.md): a source VMM streams a
/// running guest to a destination VMM over one authenticated TCP connection.
package enum MigrationProtocol {
    package static let magic = Array("ENGRAMMG".utf8)
    package static let version: UInt32 = 1
    /// The handshake of the page protocol, with this protocol's magic and proof labels.
    static let identity = Handshake.Identity(
        magic: magic, version: version, clientLabel: "engram migration source v1", serverLabel: "engram migration destination v1",
        clientName: "migration source", serverName: "migration destination")
    /// The largest plan or state frame accepted.
    static let maximumControlFrame = 16 << 20
    /// Pages one ZERO_PAGES frame names at most.
    package static let maximumZeroPages = 1 << 16
    /// Page channels a pre-copy may use beside its control connection.
    package static let maximumChannels = 16
    /// Bytes of the token that ties a page channel to its migration.
    package static let channelTokenLength = 16
}

/// How guest memory moves.
package enum MigrationMode: String, Codable, Sendable, CaseIterable {
    /// Passes of dirty pages while the guest runs, then a short stop-and-copy.
    case precopy
    /// Stop at once and move the state; the destination fetches pages on first touch from the
    /// source, which serves them until all have arrived.
    case postcopy
    /// Both VMMs map the same RAM files: only the state moves.
    case shared
}
