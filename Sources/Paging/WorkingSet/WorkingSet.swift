/// The pages a guest touched in its first seconds after a restore, in the order it first
/// touched them (the idea of REAP, ASPLOS'21): a later restore of the same snapshot fetches
/// them in one batched transfer at resume instead of faulting on each.
///
/// `fingerprint` names the snapshot it was recorded against; a set is only used with that snapshot.
package struct WorkingSet: Sendable, Equatable {
    package let fingerprint: UInt64
    /// Distinct pages, first touch first.
    package let pages: [PageReference]
    /// How long the recording ran.
    package let recordedMilliseconds: UInt32

    package init(fingerprint: UInt64, pages: [PageReference], recordedMilliseconds: UInt32) {
        self.fingerprint = fingerprint
        self.pages = pages
        self.recordedMilliseconds = recordedMilliseconds
    }

    /// The most pages a working set may list: 4 GiB of 4 KiB pages.
    package static let maximumPages = 1 << 20

    /// Checks the set against `source`: recorded for `fingerprint`, every page inside its region.
    package func check(against source: any PageSource, fingerprint expected: UInt64) throws(PageSourceError) {
        guard fingerprint == expected else {
            throw .workingSet("the working set was recorded for another snapshot (fingerprint \(hex(fingerprint)), this one is \(hex(expected))); record it again")
        }
        for page in pages {
            guard page.region < source.regionCount, page.page.rawValue < source.pageCount(region: page.region) else {
                throw .workingSet("the working set names page \(page.page) of region \(page.region), which the snapshot does not have")
            }
        }
    }

    private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
