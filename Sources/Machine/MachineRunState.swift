/// Whether a machine's vCPUs run, are parked, or are ending: one type for the run loop, the
/// controllers and the API (whose JSON names are the raw values).
package enum MachineRunState: String, Sendable, Equatable, CustomStringConvertible {
    case running, paused, stopping

    package var description: String { rawValue }
}
