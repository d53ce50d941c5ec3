import ControlAPI
import Devices
import Machine

extension MachineController {
    package func devices() -> [DeviceInfo] { machine.virtioDevices().map(Self.info) }

    package func replaceDisk(_ request: DiskReplacement) throws(VMControlError) -> DeviceInfo {
        guard !request.path.isEmpty, !request.path.contains("\0") else { throw .invalidRequest(reason: "path must name the new disk file") }
        do { try machine.replaceDisk(name: request.name, path: request.path, readOnly: request.readOnly) } catch {
            if case .notPaused = error { throw .invalidState(operation: "replace a disk", state: machine.runState.rawValue) }
            throw .invalidRequest(reason: error.description)
        }
        guard let device = devices().first(where: { $0.name == request.name }) else {
            throw .failed(operation: "replace a disk", reason: "disk \(request.name) went away")
        }
        return device
    }

    static func info(_ report: VirtioDeviceReport) -> DeviceInfo {
        DeviceInfo(
            name: report.name, type: report.type.name, mmioAddress: report.mmioAddress, interruptLine: report.interruptLine,
            driverStatus: report.driverStatus, needsReset: report.driverStatus & VirtioStatus.needsReset != 0,
            negotiatedFeatures: report.negotiatedFeatures, brokenQueues: report.brokenQueues,
            disk: report.disk.map { disk in
                DiskInfo(
                    path: disk.configuration.path, readOnly: disk.configuration.readOnly, id: disk.configuration.identifier ?? report.name,
                    capacityBytes: disk.capacityBytes, readBytes: disk.counters.readBytes.load(ordering: .relaxed),
                    writtenBytes: disk.counters.writtenBytes.load(ordering: .relaxed), flushes: disk.counters.flushes.load(ordering: .relaxed),
                    discards: disk.counters.discards.load(ordering: .relaxed), failedRequests: disk.counters.failed.load(ordering: .relaxed),
                    malformedRequests: disk.counters.malformed.load(ordering: .relaxed))
            },
            entropy: report.entropy.map {
                EntropyInfo(rateBytesPerSecond: $0.configuration.rate, burstBytes: $0.configuration.burst, bytesServed: $0.bytesServed)
            },
            vsock: report.vsock.map { vsock in
                let counters = vsock.counters
                return VsockInfo(
                    guestCID: vsock.configuration.guestCID, socketPath: vsock.configuration.path,
                    connectionsOpen: counters.connectionsOpen.load(ordering: .relaxed),
                    connectionsOpened: counters.connectionsOpened.load(ordering: .relaxed), rxPackets: counters.rxPackets.load(ordering: .relaxed),
                    rxBytes: counters.rxBytes.load(ordering: .relaxed), txPackets: counters.txPackets.load(ordering: .relaxed),
                    txBytes: counters.txBytes.load(ordering: .relaxed), refusedPackets: counters.refused.load(ordering: .relaxed),
                    creditViolations: counters.creditViolations.load(ordering: .relaxed))
            },
            network: report.network.map { network in
                let counters = network.counters
                return NetworkInfo(
                    tap: network.tap, mac: network.mac.description, rxPackets: counters.rxPackets.load(ordering: .relaxed),
                    rxBytes: counters.rxBytes.load(ordering: .relaxed), txPackets: counters.txPackets.load(ordering: .relaxed),
                    txBytes: counters.txBytes.load(ordering: .relaxed), rxDropped: counters.rxDropped.load(ordering: .relaxed),
                    txDropped: counters.txDropped.load(ordering: .relaxed), errors: counters.errors.load(ordering: .relaxed))
            })
    }
}
