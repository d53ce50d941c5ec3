extension PortIOBus {
    /// Collects devices and the ports they claim before the vCPUs start; `build()` freezes them into a bus.
    package final class Builder {
        private var claims: [(ports: ClosedRange<UInt16>, device: any PortIODevice)] = []

        /// An empty builder.
        package init() {}

        /// Claims `ports` for `device`. One device may claim several ranges (the i8042 takes 0x60
        /// and 0x64); a range overlapping an earlier claim is refused, naming both devices.
        package func register(_ device: any PortIODevice, ports: ClosedRange<UInt16>) throws(DeviceError) {
            if let clash = claims.first(where: { $0.ports.overlaps(ports) }) {
                throw .portConflict(device: Self.name(of: device), ports: ports,
                                    existingDevice: Self.name(of: clash.device), existingPorts: clash.ports)
            }
            claims.append((ports, device))
        }

        /// The immutable bus over every claim so far.
        package func build() -> PortIOBus { PortIOBus(claims: claims) }

        private static func name(of device: any PortIODevice) -> String { String(describing: type(of: device)) }
    }
}
