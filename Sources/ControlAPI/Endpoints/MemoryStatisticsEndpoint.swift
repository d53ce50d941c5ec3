
/// GET /vm/memory/stats: restore mode and lazy-fill counters (see MemoryStatistics).
package enum MemoryStatisticsEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.memoryStatistics) { _ in try .json(control.memoryStatistics()) }
    }
}
