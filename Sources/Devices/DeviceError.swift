/// Why the device layout could not be built.
package enum DeviceError: Error, CustomStringConvertible, Equatable {
    /// Two devices claim the same port.
    case portConflict(ports: ClosedRange<UInt16>, existing: ClosedRange<UInt16>)

    package var description: String {
        switch self {
        case .portConflict(let ports, let existing):
            "ports 0x\(String(ports.lowerBound, radix: 16))-0x\(String(ports.upperBound, radix: 16)) overlap a device already at 0x\(String(existing.lowerBound, radix: 16))-0x\(String(existing.upperBound, radix: 16))"
        }
    }
}
