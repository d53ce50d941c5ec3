import Migration
import Testing

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
