/// Asks a lazy restore to record its working set: every page the guest touches in its first
/// `nanoseconds`, in order. The background fill waits that long (so each touch faults and is
/// seen), then `store` is called once, on the fill thread, with the set.
package struct WorkingSetRecorder: Sendable {
    package let nanoseconds: UInt64
    /// The fingerprint of the snapshot being restored, stamped on the set.
    package let fingerprint: UInt64
    package let store: @Sendable (WorkingSet) -> Void

    /// The most pages recorded (4 GiB); a guest touching more in the window is recorded up to here.
    static let maximumPages = 1 << 20

    package init(milliseconds: UInt64, fingerprint: UInt64, store: @escaping @Sendable (WorkingSet) -> Void) {
        nanoseconds = milliseconds * 1_000_000
        self.fingerprint = fingerprint
        self.store = store
    }
}
