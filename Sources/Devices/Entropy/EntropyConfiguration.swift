/// A virtio-rng device's limit (`--rng [rate=BYTES_PER_S][,burst=BYTES]`).
package struct EntropyConfiguration: Sendable, Equatable, Codable {
    /// Bytes per second the guest may take.
    package var rate: UInt64
    /// The most it may take at once after a quiet spell.
    package var burst: UInt64

    /// 1 MiB/s in bursts of 64 KiB: far more than any guest's entropy pool needs, and little
    /// enough that a guest cannot spin the host's generator.
    package init(rate: UInt64 = 1 << 20, burst: UInt64 = 64 << 10) {
        self.rate = rate
        self.burst = burst
    }
}

extension EntropyConfiguration {
    static let syntax = "on, or rate=BYTES_PER_SECOND[,burst=BYTES] with both at least 1"

    /// Parses `on` (the defaults) or `rate=N[,burst=N]`.
    package static func parse(_ text: String) throws(DeviceError) -> EntropyConfiguration {
        var entropy = EntropyConfiguration()
        guard text != "on" else { return entropy }
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, let value = UInt64(pair[1]), value > 0 else {
                throw .invalidOption(option: "--rng", value: text, expected: syntax)
            }
            switch pair[0] {
            case "rate": entropy.rate = value
            case "burst": entropy.burst = value
            default: throw .invalidOption(option: "--rng", value: text, expected: syntax)
            }
        }
        return entropy
    }
}
