import ControlAPI
import Devices
import Machine

extension MachineController {
    package func devices() -> [DeviceInfo] { machine.virtioDevices().map(Self.info) }

    package func updateDisk(_ request: DiskUpdate) throws(VMControlError) -> DeviceInfo {
        guard request.path != nil || request.readOnly != nil || request.rateLimit != nil else {
            throw .invalidRequest(reason: "nothing to change: give path (and read_only) or rate_limit")
        }
        if let path = request.path {
            guard !path.isEmpty, !path.contains("\0") else { throw .invalidRequest(reason: "path must name the new disk file") }
            // The destination opens the disk the migration's state names.
            try refuseDuringMigration("replace a disk")
        } else if request.readOnly != nil {
            throw .invalidRequest(reason: "read_only applies to a new file: give path too")
        }
        let limit = try request.rateLimit.map { (setting) throws(VMControlError) in try Self.rateLimit(setting) }
        do {
            if let path = request.path { try machine.replaceDisk(name: request.name, path: path, readOnly: request.readOnly) }
            if let limit { try machine.limitDisk(name: request.name, to: limit.isEmpty ? nil : limit) }
        } catch {
            if case .notPaused = error { throw .invalidState(operation: "replace a disk", state: machine.runState.rawValue) }
            throw .invalidRequest(reason: error.description)
        }
        guard let device = devices().first(where: { $0.name == request.name }) else {
            throw .failed(operation: "update a disk", reason: "disk \(request.name) went away")
        }
        return device
    }

    /// The API's limit as the device's; a rate or burst of 0 is refused.
    static func rateLimit(_ setting: DiskRateLimitSetting) throws(VMControlError) -> DiskRateLimit {
        func bucket(_ bucket: TokenBucketSetting?, _ name: String) throws(VMControlError) -> RateLimit? {
            guard let bucket else { return nil }
            let limit = RateLimit(rate: bucket.rate, burst: bucket.burst)
            guard limit.isValid else { throw .invalidRequest(reason: "rate_limit.\(name): rate and burst must be at least 1") }
            return limit
        }
        return DiskRateLimit(bandwidth: try bucket(setting.bandwidth, "bandwidth"), operations: try bucket(setting.operations, "operations"))
    }

    static func setting(_ limit: DiskRateLimit) -> DiskRateLimitSetting {
        DiskRateLimitSetting(
            bandwidth: limit.bandwidth.map { TokenBucketSetting(rate: $0.rate, burst: $0.burst) },
            operations: limit.operations.map { TokenBucketSetting(rate: $0.rate, burst: $0.burst) })
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
                    malformedRequests: disk.counters.malformed.load(ordering: .relaxed), rateLimit: disk.configuration.rateLimit.map(Self.setting),
                    throttledRequests: disk.counters.throttled.load(ordering: .relaxed), imageSyncs: disk.counters.imageSyncs.load(ordering: .relaxed))
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
                    creditViolations: counters.creditViolations.load(ordering: .relaxed), requestTimeouts: counters.requestTimeouts.load(ordering: .relaxed))
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
