/// How long the client keeps trying when the store is briefly away, and how long it waits on one
/// attempt.
///
/// The lazy pager faults guest pages in from the store: a guest blocked on a page is better off
/// waiting through a volume-server restart than crashing, so transient failures are retried for a
/// long time (two minutes by default) with exponential backoff, which keeps the load on a
/// recovering store low.
package struct RetryPolicy: Sendable {
    /// The wait before the first retry; each later wait doubles it (with some jitter, so many
    /// fault threads do not retry in lockstep).
    package var firstDelayMilliseconds: Int
    /// The longest wait between two attempts.
    package var maximumDelayMilliseconds: Int
    /// No retry starts after this long since the call began; the call fails as unavailable.
    package var giveUpAfterMilliseconds: Int
    /// The longest wait for the next bytes of a response before the attempt counts as failed
    /// (and is retried). A stalled connection would otherwise hold a faulting guest forever.
    /// An attempt also ends once it has taken this long or the rest of the give-up budget,
    /// whichever is longer, however steadily the bytes come.
    package var attemptTimeoutMilliseconds: Int
    /// The longest wait for a TCP (and TLS) connection to the endpoint.
    package var connectTimeoutMilliseconds: Int

    package init(firstDelayMilliseconds: Int, maximumDelayMilliseconds: Int, giveUpAfterMilliseconds: Int,
                 attemptTimeoutMilliseconds: Int = 30_000, connectTimeoutMilliseconds: Int = 5_000) {
        self.firstDelayMilliseconds = max(1, firstDelayMilliseconds)
        self.maximumDelayMilliseconds = max(self.firstDelayMilliseconds, maximumDelayMilliseconds)
        self.giveUpAfterMilliseconds = max(0, giveUpAfterMilliseconds)
        self.attemptTimeoutMilliseconds = max(1, attemptTimeoutMilliseconds)
        self.connectTimeoutMilliseconds = max(1, connectTimeoutMilliseconds)
    }

    /// 50 ms doubling to 2 s, give up after 120 s; 30 s per stalled attempt, 5 s to connect.
    package static let `default` = RetryPolicy(firstDelayMilliseconds: 50, maximumDelayMilliseconds: 2_000,
                                               giveUpAfterMilliseconds: 120_000)
}
