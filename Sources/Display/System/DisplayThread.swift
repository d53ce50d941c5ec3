import GuestMemory

/// The display's threads (the acceptor, the change poller, one per viewer) are joinable
/// `NamedThread`s, so `stop` knows they have ended; this names a failure to start one.
enum DisplayThread {
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(DisplayError) -> NamedThread {
        do { return try NamedThread.spawn(name: name, body) } catch { throw .thread(name: name, error) }
    }
}
