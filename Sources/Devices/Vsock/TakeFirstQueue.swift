/// A first-in, first-out list kept in one array: taking from the front moves a head index, and
/// the entries taken are dropped once they are half the array (or all of it). So the array stays
/// within about twice what is waiting, however long entries keep coming while others still wait
/// (connections taking turns re-queue themselves behind each other: emptied only when drained,
/// the array grew by an entry per packet for as long as two of them stayed busy).
struct TakeFirstQueue<Element> {
    private var storage: [Element] = []
    private var head = 0

    /// Entries taken are dropped from the front once there are at least this many of them and
    /// they are half the array: a move of what is left, rare enough to cost nothing per entry.
    private static var compactionFloor: Int { 32 }

    init(reservingCapacity capacity: Int = 0) { storage.reserveCapacity(capacity) }

    /// The entries waiting, first to last.
    var waiting: ArraySlice<Element> { storage[head...] }
    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }
    var first: Element? { isEmpty ? nil : storage[head] }
    /// How many array slots the queue holds (waiting entries and taken ones not yet dropped).
    var footprint: Int { storage.count }

    mutating func append(_ element: Element) { storage.append(element) }

    /// Takes the first entry, if any.
    mutating func takeFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= Self.compactionFloor, head * 2 >= storage.count {
            storage.removeSubrange(0..<head)
            head = 0
        }
        return element
    }

    /// Removes the first waiting entry that `matches`; whether there was one.
    @discardableResult
    mutating func removeFirst(where matches: (Element) -> Bool) -> Bool {
        guard let index = storage[head...].firstIndex(where: matches) else { return false }
        storage.remove(at: index)
        return true
    }

    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
    }

    /// Replaces the contents with `elements`, in order.
    mutating func replace(with elements: [Element]) {
        storage.removeAll(keepingCapacity: true)
        storage.append(contentsOf: elements)
        head = 0
    }
}
