import GuestMemory
import Testing

@Suite struct ZeroedWordsTests {
    @Test func wordsStartZeroAndKeepWhatIsSet() {
        let words = ZeroedWords(count: 1 << 20)  // 8 MiB: a block calloc takes from fresh pages
        #expect(words.count == 1 << 20)
        for index in stride(from: 0, to: words.count, by: 4099) { #expect(words[index] == 0) }
        words[0] = 1
        words[words.count - 1] = ~0
        words[12_345] = 0xDEAD_BEEF
        #expect(words[0] == 1 && words[words.count - 1] == ~0 && words[12_345] == 0xDEAD_BEEF && words[12_346] == 0)
    }

    @Test func atomicAccessorsSetLoadAndTake() {
        let words = ZeroedWords(count: 8)
        words.orRelease(0b0101, at: 3)
        words.orRelease(0b1000, at: 3)
        #expect(words.loadRelaxed(at: 3) == 0b1101 && words.loadRelaxed(at: 2) == 0)
        #expect(words.takeAcquire(at: 3) == 0b1101)
        #expect(words.loadRelaxed(at: 3) == 0 && words[3] == 0)
    }

    @Test func anEmptyBlockHasNoWords() {
        #expect(ZeroedWords(count: 0).count == 0)
    }
}
