import Histogram
import LinuxSystem

/// Fault latencies in nanoseconds, recorded by the fault handler without allocating.
///
/// The histogram has a fixed range (1 ns to 60 s, two significant digits: ~3,500 counters),
/// so `record` never resizes. The lock is held only for one record; `summary` copies the
/// counters into a histogram it allocated beforehand, so the handler never pays for a reader.
final class FaultLatencyRecorder: Sendable {
    /// The longest latency tracked; longer ones are recorded as this.
    static let highestNanoseconds: UInt64 = 60_000_000_000

    private let histogram = Locked(FaultLatencyRecorder.emptyHistogram())

    private static func emptyHistogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: highestNanoseconds, numberOfSignificantValueDigits: .two)
    }

    /// Records one fault that took `nanoseconds`.
    func record(nanoseconds: UInt64) {
        let value = min(max(nanoseconds, 1), Self.highestNanoseconds)
        histogram.withLock { _ = $0.record(value) }
    }

    /// Percentiles, mean and power-of-two buckets, in microseconds.
    func summary() -> FaultLatencySummary {
        var copy = Self.emptyHistogram()
        histogram.withLock { copy.add($0) }
        guard copy.totalCount > 0 else { return .empty }
        let microseconds = { (nanoseconds: UInt64) in Double(nanoseconds) / 1000 }
        // Bucket k holds values up to 1 µs · 2^k; the last one reaches the largest recorded value.
        var bounds: [UInt64] = [1000]
        while bounds[bounds.count - 1] < copy.max { bounds.append(bounds[bounds.count - 1] * 2) }
        var counts = [UInt64](repeating: 0, count: bounds.count)
        for recorded in copy.recordedValues() {
            let index = bounds.firstIndex { recorded.value <= $0 } ?? bounds.count - 1
            counts[index] += UInt64(recorded.count)
        }
        let buckets = zip(bounds, counts).map { LatencyBucket(upperBoundMicroseconds: microseconds($0), count: $1) }
        return FaultLatencySummary(
            count: copy.totalCount,
            p50Microseconds: microseconds(copy.valueAtPercentile(50)),
            p90Microseconds: microseconds(copy.valueAtPercentile(90)),
            p99Microseconds: microseconds(copy.valueAtPercentile(99)),
            maxMicroseconds: microseconds(copy.maxRecorded),
            meanMicroseconds: copy.mean / 1000,
            buckets: buckets)
    }
}
