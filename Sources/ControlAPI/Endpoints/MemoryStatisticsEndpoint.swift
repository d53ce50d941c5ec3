
/// GET /vm/memory/stats: restore mode and lazy-fill counters (see MemoryStatistics).
package enum MemoryStatisticsEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add("GET", "/vm/memory/stats") { _ in try .json(control.memoryStatistics()) }
    }
}

extension VMControl {
    /// A VM that was booted, not restored, has no restore or fill to report.
    package func memoryStatistics() -> MemoryStatistics { MemoryStatistics() }
}
