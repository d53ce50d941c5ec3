import GuestMemory
import LinuxSystem
@testable import Migration
import SnapshotFormat
import Testing
import Transport

/// Where a failed migration leaves the guest: it resumes at the source only when it cannot be
/// running at the destination.
@Suite struct MigrationFailureOutcomeTests {
    @Test func theGuestResumesHereOnlyWhenTheDestinationCannotRunIt() {
        #expect(MigrationSource.guestResumesHere(stateSent: false, runningReceived: false, refused: false), "failed before the state went out")
        #expect(MigrationSource.guestResumesHere(stateSent: false, runningReceived: false, refused: true))
        #expect(MigrationSource.guestResumesHere(stateSent: true, runningReceived: false, refused: true), "refused the state")
        #expect(!MigrationSource.guestResumesHere(stateSent: true, runningReceived: false, refused: false), "connection lost: unknown")
        #expect(!MigrationSource.guestResumesHere(stateSent: true, runningReceived: true, refused: true),
                "an ERROR after RUNNING: the guest runs there, so not here too")
        #expect(!MigrationSource.guestResumesHere(stateSent: true, runningReceived: true, refused: false))
    }
}

/// A plan's data pages are allocated at once, before the first pass: a plan this host cannot
/// hold is refused before then.
@Suite struct MigrationPlanSizeTests {
    @Test func aPlanLargerThanTheHostsAvailableMemoryIsRefused() throws {
        let shapes = [SnapshotRegionShape(name: "ram", sizeInBytes: 1 << 40, placements: [])]
        let plan = MigrationPlan(mode: .precopy, shapes: shapes, dataPages: ["ram": [PageIndex(0)..<PageIndex(1 << 28)]])
        #expect(plan.dataBytes == 1 << 40)
        #expect(throws: MigrationRefusal.self) { try MigrationArrival.checkHostHolds(dataBytes: plan.dataBytes, available: 8 << 30) }
        try MigrationArrival.checkHostHolds(dataBytes: 1 << 30, available: 8 << 30)
        try MigrationArrival.checkHostHolds(dataBytes: plan.dataBytes, available: nil)  // unknown: not refused on a guess
    }

    @Test func meminfoGivesTheAvailableBytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\nBuffers: 1 kB\n"
        #expect(HostMemory.availableBytes(inMeminfo: text) == 20_000_000 * 1024)
        #expect(HostMemory.availableBytes(inMeminfo: "MemTotal: 1 kB\n") == nil)
        #expect(HostMemory.availableBytes(inMeminfo: "MemAvailable: lots kB\n") == nil)
        #expect(HostMemory.availableBytes(inMeminfo: "MemAvailable: 18446744073709551615 kB\n") == nil, "overflow")
        #expect((HostMemory.availableBytes() ?? 0) > 0, "this host's /proc/meminfo")
    }
}
