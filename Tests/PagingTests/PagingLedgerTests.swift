@testable import Paging
import Testing

/// The ledger's answers for pages the guest gave back while a lazy restore ran.
@Suite struct PagingLedgerTests {
    /// A page given back is claimed but never installed from the snapshot: a second discard of
    /// it must not wait for it as for a copy in flight (the device thread spun until the whole
    /// fill ended). A page a fill thread claimed and has not installed is in flight.
    @Test func aPageGivenBackIsNotInFlight() {
        var ledger = PagingLedger(totalPages: 128)
        let givenBack: PagerPage = 9, fetching: PagerPage = 20
        _ = ledger.claimed.insert(givenBack..<givenBack + 1)
        _ = ledger.discarded.insert(givenBack..<givenBack + 1)
        _ = ledger.claimed.insert(fetching..<fetching + 1)
        #expect(!ledger.installing(givenBack..<givenBack + 1))
        #expect(ledger.installing(fetching..<fetching + 1))
        #expect(ledger.installing(givenBack..<fetching + 1))
    }

    /// A page the guest touched, gave back and touched again is installed twice by the fault
    /// handler but recorded once: a working set listing it twice is refused when a later
    /// restore reads it.
    @Test func aPageInstalledAgainIsRecordedOnce() {
        var ledger = PagingLedger(totalPages: 128)
        ledger.recording = WorkingSetRecording(capacity: 100, deadline: .max)
        let page: PagerPage = 5
        _ = ledger.claimed.insert(page..<page + 2)
        ledger.recordInstalled(page..<page + 2, by: .faultHandler)
        _ = ledger.discarded.insert(page..<page + 1)
        ledger.recordInstalled(page..<page + 1, by: .faultHandler)
        ledger.recordInstalled(page + 1..<page + 3, by: .faultHandler)
        #expect(ledger.recording?.pages == [page, page + 1, page + 2])
        #expect(ledger.demandPages == 3)
    }
}
