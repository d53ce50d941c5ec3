/// A virtio-balloon device (`--balloon AMOUNT_MIB[,deflate_on_oom][,stats_interval_s=N][,free_page_reporting]`),
/// shaped like Firecracker's balloon so its users find what they expect.
package struct BalloonConfiguration: Sendable, Equatable, Codable {
    /// How much memory the guest is asked to give up (the balloon's target), in MiB.
    package var amountMiB: UInt32
    /// The guest may take pages back from the balloon when it runs out of memory (VIRTIO_BALLOON_F_DEFLATE_ON_OOM).
    package var deflateOnOOM: Bool
    /// Seconds between statistics updates; 0 turns the statistics queue off. It can be changed
    /// later (PATCH /vm/balloon/statistics) but not turned on or off once the VM runs.
    package var statisticsIntervalSeconds: UInt32
    /// The guest reports pages it freed, which go back to the host (VIRTIO_BALLOON_F_PAGE_REPORTING).
    package var freePageReporting: Bool

    package init(amountMiB: UInt32 = 0, deflateOnOOM: Bool = false, statisticsIntervalSeconds: UInt32 = 0, freePageReporting: Bool = false) {
        self.amountMiB = amountMiB
        self.deflateOnOOM = deflateOnOOM
        self.statisticsIntervalSeconds = statisticsIntervalSeconds
        self.freePageReporting = freePageReporting
    }

    /// The target in 4 KiB balloon pages, as the device's `num_pages` says it.
    package var targetPages: UInt32 { amountMiB &* 256 }

    /// The largest target: num_pages is 32 bits of 4 KiB pages.
    package static let maximumAmountMiB: UInt32 = UInt32.max / 256
}

extension BalloonConfiguration {
    static let syntax = "AMOUNT_MIB[,deflate_on_oom][,stats_interval_s=SECONDS][,free_page_reporting]"

    /// Parses `--balloon`'s value.
    package static func parse(_ text: String) throws(DeviceError) -> BalloonConfiguration {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let amount = UInt32(parts[0]), amount <= maximumAmountMiB else {
            throw .invalidOption(option: "--balloon", value: text, expected: syntax + " with AMOUNT_MIB at most \(maximumAmountMiB)")
        }
        var balloon = BalloonConfiguration(amountMiB: amount)
        for part in parts.dropFirst() {
            switch part {
            case "deflate_on_oom": balloon.deflateOnOOM = true
            case "free_page_reporting": balloon.freePageReporting = true
            default:
                guard part.hasPrefix("stats_interval_s="), let seconds = UInt32(part.dropFirst("stats_interval_s=".count)) else {
                    throw .invalidOption(option: "--balloon", value: text, expected: syntax)
                }
                balloon.statisticsIntervalSeconds = seconds
            }
        }
        return balloon
    }
}
