import Transport

/// How a migration is going or went, as GET /vm/migrate reports it. Updated by the migration's
/// thread, read by the control API's: every field is a plain value copied under a lock.
package struct MigrationReport: Sendable, Equatable {
    /// "idle", "active", "completed" or "failed".
    package var status = "idle"
    package var mode: MigrationMode?
    package var destination = ""
    /// What the migration is doing: "connecting", "copying", "stopping", "serving pages", …
    package var phase = ""
    /// Pre-copy passes begun (1 = the first full pass).
    package var passes: UInt32 = 0
    /// Pre-copy: page channels beside the control connection (nil: the pages go on it).
    package var channels: Int?
    package var bytesSent: UInt64 = 0
    package var pagesSent: UInt64 = 0
    package var zeroPagesSent: UInt64 = 0
    /// Pages the guest dirtied per second, over the last pass.
    package var dirtyPagesPerSecond: Double = 0
    /// Pages the last pass found dirty (to send next).
    package var remainingPages: UInt64 = 0
    /// Bytes per second the last pass reached.
    package var bandwidthBytesPerSecond: Double = 0
    /// Downtime the remaining pages would cost at that bandwidth.
    package var expectedDowntimeMilliseconds: Double = 0
    package var maximumDowntimeMilliseconds: Double = 0
    /// Source paused → destination running, once known.
    package var downtimeMilliseconds: Double?
    package var totalMilliseconds: Double?
    package var error: String?

    package init() {}
}
