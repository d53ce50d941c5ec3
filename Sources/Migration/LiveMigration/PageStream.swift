import GuestMemory

/// Where a pre-copy's pages go: the control connection itself (`PageSender`), or page channels
/// beside it (`PageChannels`). Counters are totals since the stream was made.
protocol PageStream: AnyObject {
    var pagesSent: UInt64 { get }
    var zeroPagesSent: UInt64 { get }
    /// Bytes of pages and their frames, on every connection the pages take.
    var bytesSent: UInt64 { get }
    /// Called now and then during a pass, on the migration thread.
    var progress: () -> Void { get set }

    /// Every page of every region that may hold data, except those `dirty` names (the next pass
    /// sends them); `refresh` is asked for newly dirtied pages as the pass goes.
    func sendAll(dirty: inout [String: PageBitmap], refreshPages: Int, refresh: () throws -> [String: PageBitmap]) throws
    /// The pages set in `dirty` (per region name); zero ones as zero.
    func send(dirty: [String: PageBitmap]) throws
    /// Ends pass `pass`: everything sent, then PASS_END (on every connection the pages take).
    func endPass(_ pass: UInt32) throws
}
