import GuestMemory
import LinuxSystem
import FoundationEssentials
import SnapshotFormat

extension MemoryImage {
    /// An Engram snapshot, full or the top of a diff chain: each page read from the newest file
    /// that stores it; vCPU registers from the state section. With `verifyPages`, every stored
    /// page is checked against its CRC32C when first read, and a damaged one is refused.
    package static func snapshot(path: String, verifyPages: Bool = true) throws(InspectError) -> MemoryImage {
        let chain: SnapshotChain
        do { chain = try SnapshotChain(path: path) } catch { throw .damaged(path: path, reason: "\(error)") }
        var files: [ImageFile] = []
        for reader in chain.files { files.append(try ImageFile(path: reader.path)) }
        var regions: [ImageRegion] = []
        for region in chain.regions {
            var builder = PageSpanBuilder()
            for page in PageIndex(0)..<PageIndex(region.pageCount) {
                let owner = chain.owner(region: region.index, page: page)
                guard owner != SnapshotChain.zeroOwner else { continue }
                let file = Int(owner)
                let offset = chain.files[file].regions[region.index].pagesOffset + page.regionOffset.rawValue
                builder.append(page..<page + 1, file: file, fileOffset: offset)
            }
            let ranges = region.placements.map {
                ImageRange(guestAddress: $0.guestAddress.rawValue, sizeInBytes: $0.sizeInBytes, regionOffset: $0.regionOffset.rawValue)
            }
            regions.append(ImageRegion(name: region.name, sizeInBytes: region.sizeInBytes, ranges: ranges,
                                       spans: builder.finished(pageCount: region.pageCount)))
        }
        let kind = chain.files.count == 1 ? "Engram snapshot" : "Engram snapshot (chain of \(chain.files.count) files)"
        // The chain's files share region indices with the image, and a span's file index is the
        // page's owner in the chain, so the chain answers for the CRC of any page a span stores.
        let check = verifyPages
            ? PageCheck(pageCounts: chain.regions.map(\.pageCount)) { region, page in chain.storedCRC(region: region, page: page) }
            : nil
        return MemoryImage(kind: kind, source: path, files: files, regions: regions,
                           processors: SavedProcessors.decode(chain.files[0].stateSections), pageCheck: check)
    }
}

/// The vCPU registers in a snapshot's state: the `vcpu.N` sections of a version 2 file, or the
/// `vcpus` array of a version 1 file's JSON (docs/FORMAT.md). Read from the documented layout
/// alone, as an outside tool would, without Engram's machine code.
enum SavedProcessors {
    private struct LegacyState: Decodable { var vcpus: [VCPU] }
    private struct VCPU: Decodable {
        var id: Int
        var blocks: [String: String]
    }

    /// The processors, or none if the state does not decode (the snapshot reader already
    /// checked its CRCs; a tool can still read memory without registers).
    static func decode(_ sections: StateSections) -> [ProcessorState] {
        let vcpus: [VCPU]
        if let legacy = sections[StateSections.legacyMachineJSON] {
            vcpus = (try? JSONDecoder().decode(LegacyState.self, from: Data(legacy.payload)))?.vcpus ?? []
        } else {
            vcpus = sections.sections.filter { $0.name.hasPrefix("vcpu.") }.compactMap { try? JSONDecoder().decode(VCPU.self, from: Data($0.payload)) }
        }
        return vcpus.sorted { $0.id < $1.id }.compactMap { vcpu in
            guard let sregs = vcpu.blocks["specialRegisters"].flatMap({ Data(base64Encoded: $0) }) else { return nil }
            let regs = vcpu.blocks["registers"].flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
            return ProcessorState(id: vcpu.id, kvmSpecialRegisters: [UInt8](sregs), kvmRegisters: regs)
        }
    }
}
