/// How `engram restore` brings a snapshot's memory back.
package enum RestoreMode: String, CaseIterable, Sendable {
    /// Every stored page is read into fresh regions before the guest runs.
    case copy
    /// The snapshot's page areas are mapped copy-on-write: nothing is read until the guest touches it.
    case map
    /// Fresh regions filled by userfaultfd: first touches are served at once, a background pass fills the rest.
    case lazy
}
