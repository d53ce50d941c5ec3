import Devices

/// What the balloon reports, for the control API.
package struct BalloonReport: Sendable, Equatable {
    package var configuration: BalloonConfiguration
    package var actualPages: UInt32
    package var counters: BalloonCounters
    package var statistics: BalloonStatistics
}

extension Machine {
    /// The balloon's state, or nil when the machine has none.
    package func balloon() -> BalloonReport? {
        balloonDevice?.withBackend { backend in
            guard let balloon = backend as? VirtioBalloon else { return nil }
            return BalloonReport(
                configuration: balloon.configuration, actualPages: balloon.actualPages, counters: balloon.counters,
                statistics: balloon.statistics)
        }
    }

    /// Asks the guest to hold `amountMiB` in its balloon (a configuration change tells it).
    package func setBalloon(amountMiB: UInt32) throws(MachineError) {
        let device = try requireBalloon()
        guard UInt64(amountMiB) << 20 <= configuration.memorySizeInBytes else {
            throw .virtio(device: device.name, reason: "amount_mib \(amountMiB) is more than the guest's \(configuration.memorySizeInBytes >> 20) MiB")
        }
        device.changeConfiguration { backend in (backend as? VirtioBalloon)?.setTarget(amountMiB: amountMiB) }
    }

    /// Changes how often the guest is asked for statistics.
    package func setBalloonStatisticsInterval(seconds: UInt32) throws(MachineError) {
        let device = try requireBalloon()
        let refusal = device.withBackend { backend -> BalloonError? in
            guard let balloon = backend as? VirtioBalloon else { return nil }
            do throws(BalloonError) { try balloon.setStatisticsInterval(seconds: seconds) } catch { return error }
            return nil
        }
        if let refusal { throw .virtio(device: device.name, reason: refusal.description) }
    }

    private var balloonDevice: VirtioMMIODevice? { virtio.devices.first { $0.deviceType == .balloon } }

    private func requireBalloon() throws(MachineError) -> VirtioMMIODevice {
        guard let device = balloonDevice else {
            throw .virtio(device: "balloon", reason: "this VM has no balloon; start it with --balloon AMOUNT_MIB")
        }
        return device
    }
}
