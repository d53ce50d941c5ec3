@testable import Paging
import Testing

/// The present-page bitmap's range operations, at word edges.
@Suite struct PresentPagesTests {
    @Test func insertCountsOnlyNewPages() {
        var present = PresentPages(count: 200)
        #expect(present.insert(60..<70) == 10)
        #expect(present.insert(65..<130) == 60)
        #expect(present.setCount == 70)
        #expect(present.contains(60) && present.contains(129) && !present.contains(59) && !present.contains(130))
    }

    @Test func missingRunStopsAtPresentPagesAndTheWindow() {
        var present = PresentPages(count: 200)
        _ = present.insert(10..<11)
        _ = present.insert(20..<21)
        #expect(present.missingRun(around: 15, within: 0..<32) == 11..<20)
        #expect(present.missingRun(around: 25, within: 16..<28) == 21..<28)
        #expect(present.missingRun(around: 10, within: 0..<32).isEmpty)
    }

    @Test func firstMissingRunSkipsFullWords() {
        var present = PresentPages(count: 300)
        _ = present.insert(0..<192)
        _ = present.insert(195..<300)
        #expect(present.firstMissingRun(in: 0..<300) == 192..<195)
        #expect(present.firstMissingRun(in: 0..<192) == nil)
        _ = present.insert(192..<195)
        #expect(present.firstMissingRun(in: 0..<300) == nil)
    }
}
