/// Why the devices could not be set up; each message names the devices and ports involved.
package enum DeviceError: Error, CustomStringConvertible, Equatable {
    /// `device` asked for `ports`, but `existingDevice` already holds `existingPorts`, which overlap them.
    case portConflict(device: String, ports: ClosedRange<UInt16>, existingDevice: String, existingPorts: ClosedRange<UInt16>)

    /// One line saying what clashed and where.
    package var description: String {
        switch self {
        case .portConflict(let device, let ports, let existingDevice, let existingPorts):
            "cannot place \(device) at ports \(Self.describe(ports)): they overlap \(existingDevice) at \(Self.describe(existingPorts))"
        }
    }

    private static func describe(_ ports: ClosedRange<UInt16>) -> String {
        let first = "0x" + String(ports.lowerBound, radix: 16)
        return ports.count == 1 ? first : first + "-0x" + String(ports.upperBound, radix: 16)
    }
}
