/// Why the devices could not be set up; each message names the devices and ports involved.
package enum DeviceError: Error, CustomStringConvertible, Equatable {
    /// `device` asked for `ports`, but `existingDevice` already holds `existingPorts`, which overlap them.
    case portConflict(device: String, ports: ClosedRange<UInt16>, existingDevice: String, existingPorts: ClosedRange<UInt16>)
    /// `device`'s MMIO window at `base` overlaps `existingDevice`'s at `existingBase`.
    case windowConflict(device: String, base: UInt64, existingDevice: String, existingBase: UInt64)
    /// A device option (`--disk`, `--rng`) that cannot be parsed: what was given and what is expected.
    case invalidOption(option: String, value: String, expected: String)

    /// One line saying what clashed and where.
    package var description: String {
        switch self {
        case .portConflict(let device, let ports, let existingDevice, let existingPorts):
            "cannot place \(device) at ports \(Self.describe(ports)): they overlap \(existingDevice) at \(Self.describe(existingPorts))"
        case .invalidOption(let option, let value, let expected):
            "\(option) \"\(value)\": expected \(expected)"
        case .windowConflict(let device, let base, let existingDevice, let existingBase):
            "cannot place \(device) at MMIO 0x\(String(base, radix: 16)): its window overlaps \(existingDevice) at 0x\(String(existingBase, radix: 16))"
        }
    }

    private static func describe(_ ports: ClosedRange<UInt16>) -> String {
        let first = "0x" + String(ports.lowerBound, radix: 16)
        return ports.count == 1 ? first : first + "-0x" + String(ports.upperBound, radix: 16)
    }
}
