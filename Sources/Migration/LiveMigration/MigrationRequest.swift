import LinuxSystem
import Transport

/// A migration the control API was asked for, checked: where, how, and the shared secret.
package struct MigrationRequest: Sendable {
    package var destination: Endpoint
    /// As the user wrote it, for messages: "tcp://10.0.0.2:7000".
    package var destinationName: String
    package var mode: MigrationMode
    /// Pre-copy stops copying live once the rest fits in this much downtime.
    package var maximumDowntimeMilliseconds: Double
    /// TLS and the shared secret (or certificates) both VMMs use.
    package var security: TransportSecurity
    /// Pre-copy gives up converging after this many passes and stops the guest anyway.
    package var maximumPasses: UInt32 = 30
    /// Pre-copy: page channels beside the control connection (1: the pages go on it).
    package var channels = 1

    package init(destination: Endpoint, destinationName: String, mode: MigrationMode, maximumDowntimeMilliseconds: Double, security: TransportSecurity) {
        self.destination = destination
        self.destinationName = destinationName
        self.mode = mode
        self.maximumDowntimeMilliseconds = maximumDowntimeMilliseconds
        self.security = security
    }
}
