/// Feature flags, as qcow2 has them (docs/FORMAT.md "Feature flags"): a reader may ignore a
/// compatible feature it does not know, and must refuse a file with an incompatible one.
///
/// Version 2 defines no feature yet; the fields exist so a later Engram can extend the format
/// without a version every older reader refuses.
package struct SnapshotFeatures: Hashable, Sendable {
    package var compatible: UInt64
    package var incompatible: UInt64

    package init(compatible: UInt64 = 0, incompatible: UInt64 = 0) {
        self.compatible = compatible
        self.incompatible = incompatible
    }

    /// Compatible feature bits this Engram knows.
    package static let knownCompatible: UInt64 = 0
    /// Incompatible feature bits this Engram knows and honours.
    package static let knownIncompatible: UInt64 = 0

    /// Incompatible bits this Engram does not know: a reader must refuse the file.
    package var unknownIncompatible: UInt64 { incompatible & ~Self.knownIncompatible }
}
