import ControlAPI
import FoundationEssentials
import Inspect

/// Opens a `mem` command's IMAGE: a control socket is asked for its regions and (if paused) its
/// registers over the API, then read through its files; anything else goes to Inspect's opener.
enum ImageLoader {
    static func open(_ options: ImageOptions) throws -> MemoryImage {
        let layout = RawLayout(rawValue: options.layout.layout.rawValue) ?? .pc
        do {
            if isSocket(options.image) { return try openLive(socket: options.image) }
            return try ImageOpener.open(path: options.image, layout: layout, verifyPages: !options.noVerify)
        } catch let error as InspectError {
            throw CommandFailure(error.description)
        }
    }

    private static func isSocket(_ path: String) -> Bool {
        (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeSocket
    }

    /// A running VM: its regions (named files, or /proc/PID/fd/N for memfds) and, when it is
    /// paused, its vCPUs' control registers. A running VM's registers are not asked for.
    private static func openLive(socket: String) throws -> MemoryImage {
        let decoder = JSONCoding.makeDecoder()
        let list: MemoryRegionList
        do {
            list = try decoder.decode(MemoryRegionList.self, from: Data(try APICall.send(socket: socket, route: .memory)))
        } catch let failure as CommandFailure { throw failure } catch {
            throw CommandFailure("\(socket): GET /vm/memory answered something that does not decode: \(error)")
        }
        let regions = try list.regions.map { region throws -> LiveRegionFile in
            guard let path = region.path ?? region.descriptorPath else {
                throw CommandFailure("\(socket): region \(region.name) has \(region.backing) memory, which no file names; run the VM with a memfd or file backing to inspect it live")
            }
            return LiveRegionFile(name: region.name, sizeInBytes: region.sizeInBytes, path: path, ranges: region.ranges.map {
                ImageRange(guestAddress: $0.guestAddress, sizeInBytes: $0.sizeInBytes, regionOffset: $0.regionOffset)
            })
        }
        let registers = (try? decoder.decode(ProcessorRegisterList.self, from: Data(try APICall.send(socket: socket, route: .vcpus))))?.vcpus ?? []
        let processors = registers.map { ProcessorState(id: $0.id, cr0: $0.cr0, cr3: $0.cr3, cr4: $0.cr4, efer: $0.efer, rip: $0.rip) }
        return try MemoryImage.live(source: socket, regions: regions, processors: processors)
    }
}
