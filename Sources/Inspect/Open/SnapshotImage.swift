import LinuxSystem
import FoundationEssentials
import SnapshotFormat

extension MemoryImage {
    /// An Engram snapshot, full or the top of a diff chain: each page read from the newest file
    /// that stores it; vCPU registers from the state section.
    package static func snapshot(path: String) throws(InspectError) -> MemoryImage {
        let chain: SnapshotChain
        do { chain = try SnapshotChain(path: path) } catch { throw .damaged(path: path, reason: "\(error)") }
        var files: [ImageFile] = []
        for reader in chain.files { files.append(try ImageFile(path: reader.path)) }
        var regions: [ImageRegion] = []
        for region in chain.regions {
            var builder = PageSpanBuilder()
            for page in 0..<region.pageCount {
                let owner = chain.owner(region: region.index, page: page)
                guard owner != SnapshotChain.zeroOwner else { continue }
                let file = Int(owner)
                let offset = chain.files[file].regions[region.index].pagesOffset + page * PageSize.bytes64
                builder.append(page..<page + 1, file: file, fileOffset: offset)
            }
            let ranges = region.placements.map {
                ImageRange(guestAddress: $0.guestAddress.rawValue, sizeInBytes: $0.sizeInBytes, regionOffset: $0.regionOffset.rawValue)
            }
            regions.append(ImageRegion(name: region.name, sizeInBytes: region.sizeInBytes, ranges: ranges,
                                       spans: builder.finished(pageCount: region.pageCount)))
        }
        let kind = chain.files.count == 1 ? "Engram snapshot" : "Engram snapshot (chain of \(chain.files.count) files)"
        return MemoryImage(kind: kind, source: path, files: files, regions: regions,
                           processors: SavedProcessors.decode(chain.state))
    }
}

/// The vCPU registers in a snapshot's state section (JSON; kernel structs as base64, keyed by name).
enum SavedProcessors {
    private struct State: Decodable { var vcpus: [VCPU] }
    private struct VCPU: Decodable {
        var id: Int
        var blocks: [String: String]
    }

    /// The processors, or none if the section does not decode (the snapshot reader already
    /// checked its CRC; a tool can still read memory without registers).
    static func decode(_ state: [UInt8]) -> [ProcessorState] {
        guard let decoded = try? JSONDecoder().decode(State.self, from: Data(state)) else { return [] }
        return decoded.vcpus.compactMap { vcpu in
            guard let sregs = vcpu.blocks["specialRegisters"].flatMap({ Data(base64Encoded: $0) }) else { return nil }
            let regs = vcpu.blocks["registers"].flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
            return ProcessorState(id: vcpu.id, kvmSpecialRegisters: [UInt8](sregs), kvmRegisters: regs)
        }
    }
}
