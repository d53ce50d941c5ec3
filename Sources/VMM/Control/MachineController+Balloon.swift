import ControlAPI
import Devices
import Machine

extension MachineController {
    package func balloon() throws(VMControlError) -> BalloonInfo { Self.info(try report()) }

    package func setBalloon(_ update: BalloonUpdate) throws(VMControlError) -> BalloonInfo {
        do { try machine.setBalloon(amountMiB: update.amountMib) } catch { throw .invalidRequest(reason: error.description) }
        return try balloon()
    }

    package func balloonStatistics() throws(VMControlError) -> BalloonStatisticsInfo {
        let report = try report()
        guard report.configuration.statisticsIntervalSeconds > 0 else {
            throw .invalidRequest(reason: "balloon statistics are off: start the VM with --balloon AMOUNT_MIB,stats_interval_s=SECONDS")
        }
        let s = report.statistics
        var info = BalloonStatisticsInfo(targetPages: report.configuration.targetPages, actualPages: report.actualPages, updates: s.updates)
        info.swapIn = s.swapIn
        info.swapOut = s.swapOut
        info.majorFaults = s.majorFaults
        info.minorFaults = s.minorFaults
        info.freeMemory = s.freeMemory
        info.totalMemory = s.totalMemory
        info.availableMemory = s.availableMemory
        info.diskCaches = s.diskCaches
        info.hugetlbAllocations = s.hugetlbAllocations
        info.hugetlbFailures = s.hugetlbFailures
        return info
    }

    package func setBalloonStatistics(_ update: BalloonStatisticsUpdate) throws(VMControlError) -> BalloonInfo {
        do { try machine.setBalloonStatisticsInterval(seconds: update.statsPollingIntervalS) } catch {
            throw .invalidRequest(reason: error.description)
        }
        return try balloon()
    }

    private func report() throws(VMControlError) -> BalloonReport {
        guard let report = machine.balloon() else {
            throw .invalidRequest(reason: "this VM has no balloon; start it with --balloon AMOUNT_MIB")
        }
        return report
    }

    static func info(_ report: BalloonReport) -> BalloonInfo {
        let c = report.counters, configuration = report.configuration
        return BalloonInfo(
            amountMib: configuration.amountMiB, deflateOnOom: configuration.deflateOnOOM,
            statsPollingIntervalS: configuration.statisticsIntervalSeconds, freePageReporting: configuration.freePageReporting,
            actualPages: report.actualPages, inflatedPages: c.inflatedPages, deflatedPages: c.deflatedPages, reports: c.reports,
            reportedBytes: c.reportedBytes, discardedBytes: c.discardedBytes, invalidPages: c.invalidPages)
    }
}
