extension PowerControlPort {
    /// The power-control register's value, for snapshots.
    package struct State: Codable, Sendable, Equatable {
        /// The PM1a control value as the guest reads it (SLP_EN always clear).
        package let control: UInt16
    }
}
