/// How much a bucket's snapshots hold against what they cost: the sum of every snapshot's
/// non-zero memory, and the bytes actually stored (packs, their indexes, manifests). With
/// deduplication, snapshots of VMs booted from the same image cost far less than their sum.
package struct ObjectSnapshotUsage: Sendable {
    package var snapshots = 0
    package var logicalBytes: UInt64 = 0
    package var storedBytes: UInt64 = 0

    /// stored ÷ logical, e.g. "0.12×".
    package var ratioText: String {
        guard logicalBytes > 0 else { return "–" }
        let ratio = (Double(storedBytes) / Double(logicalBytes) * 100).rounded() / 100
        return "\(ratio)×"
    }

    package static func measure(bucket: String, client: S3Client) throws(ObjectSnapshotError) -> ObjectSnapshotUsage {
        var usage = ObjectSnapshotUsage()
        do {
            for object in try client.listObjects(bucket: bucket, prefix: "") {
                let isPackData = object.key.hasPrefix(PackIndex.prefix)
                let isManifest = object.key.hasSuffix("/manifest")
                guard isPackData || isManifest else { continue }
                usage.storedBytes = Self.saturatingSum(usage.storedBytes, object.size)  // sizes are the store's word
                guard isManifest else { continue }
                let location = ObjectLocation(bucket: bucket, uncheckedKey: object.key)
                guard let manifest = try? ObjectSnapshotManifest.decode(try client.getObject(location), origin: object.key) else { continue }
                usage.snapshots += 1
                usage.logicalBytes = manifest.regions.reduce(usage.logicalBytes) { total, region in
                    region.chunks.reduce(total) { Self.saturatingSum($0, $1?.length ?? 0) }
                }
            }
        } catch {
            throw .store(error)
        }
        return usage
    }

    private static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
