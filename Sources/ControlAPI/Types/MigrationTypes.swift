/// PUT /vm/migrate body: where the guest goes and how its memory moves.
package struct MigrationRequestBody: Codable, Sendable, Equatable {
    /// `tcp://HOST:PORT` of a destination waiting in `engram receive`.
    package var to: String
    /// "precopy" (default), "postcopy" or "shared".
    package var mode: String?
    /// Pre-copy copies while the guest runs until the rest fits in this many milliseconds of
    /// downtime (default 300, as QEMU's downtime-limit).
    package var maxDowntimeMs: Double?
    /// Pre-copy: page channels beside the control connection, each a connection and a thread
    /// at both ends (QEMU's multifd channels); 1 or absent: the pages go on the one connection.
    package var channels: Int?
    /// The file holding the secret both VMMs share (as `engram serve`'s), read by this VMM: the
    /// TLS pre-shared key and the proof the destination checks.
    package var secretFile: String?
    /// Mutual certificate authentication instead of (or with) the secret: this VMM's PEM
    /// certificate and key, and the authority that signed the destination's.
    package var tlsCert: String?
    package var tlsKey: String?
    package var tlsCa: String?
    /// Plain TCP, for loopback benchmarks only (the destination must say the same).
    package var insecurePlaintext: Bool?

    package init(
        to: String, mode: String? = nil, maxDowntimeMs: Double? = nil, secretFile: String?, tlsCert: String? = nil, tlsKey: String? = nil,
        tlsCa: String? = nil, insecurePlaintext: Bool? = nil, channels: Int? = nil
    ) {
        self.to = to
        self.mode = mode
        self.maxDowntimeMs = maxDowntimeMs
        self.channels = channels
        self.secretFile = secretFile
        self.tlsCert = tlsCert
        self.tlsKey = tlsKey
        self.tlsCa = tlsCa
        self.insecurePlaintext = insecurePlaintext
    }
}

/// GET /vm/migrate answer, and PUT /vm/migrate's (202, status "active").
package struct MigrationStatus: Codable, Sendable, Equatable {
    /// "idle" (never asked), "active", "completed" or "failed".
    package var status: String
    package var mode: String?
    package var to: String?
    /// What the migration is doing now: "connecting", "copying", "stopping", "serving pages", …
    package var phase: String?
    /// Pre-copy passes over memory begun (1: the first, full pass).
    package var passes: UInt32
    /// Pre-copy over page channels: how many, beside the control connection.
    package var channels: Int?
    package var bytesSent: UInt64
    package var pagesSent: UInt64
    package var zeroPagesSent: UInt64
    /// Pages the guest dirtied per second during the last pass.
    package var dirtyPagesPerSecond: Double
    /// Dirty pages left to send after the last pass.
    package var remainingPages: UInt64
    package var bandwidthBytesPerSecond: Double
    /// What stopping now would cost, at the last pass's bandwidth.
    package var expectedDowntimeMs: Double
    package var maxDowntimeMs: Double
    /// Source paused → destination running; set once the destination runs the guest.
    package var downtimeMs: Double?
    package var totalMs: Double?
    package var error: String?

    package init(status: String) {
        self.status = status
        passes = 0
        bytesSent = 0
        pagesSent = 0
        zeroPagesSent = 0
        dirtyPagesPerSecond = 0
        remainingPages = 0
        bandwidthBytesPerSecond = 0
        expectedDowntimeMs = 0
        maxDowntimeMs = 0
    }
}
