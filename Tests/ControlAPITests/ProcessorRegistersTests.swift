import ControlAPI
import Foundation
import Testing

/// GET /vm/vcpus: the registers in snake_case JSON, 409 from a VM that cannot give them.
@Suite struct ProcessorRegistersTests {
    struct Paused: PartialVMControl {
        func vmInfo() -> VMInfo { VMInfo(state: "paused", vcpus: 1, uptimeSeconds: 1, memorySizeInBytes: 1 << 20) }
        func memoryRegions() -> [MemoryRegionInfo] {
            [MemoryRegionInfo(name: "ram", sizeInBytes: 1 << 20, backing: "memfd", path: nil, ranges: [], descriptorPath: "/proc/1/fd/9")]
        }
        func pause() throws(VMControlError) {}
        func resume() throws(VMControlError) {}
        func shutdown() throws(VMControlError) {}
        func processorRegisters() throws(VMControlError) -> [ProcessorRegisters] {
            [ProcessorRegisters(id: 0, cr0: 0x8000_0011, cr3: 0x10_1000, cr4: 0x20, efer: 0x500, rip: 0x10_0020)]
        }
    }

    @Test func registersAndDescriptorPathsAreReported() throws {
        let router = Router(control: Paused(), version: "1")
        let response = router.respond(method: "GET", target: "/vm/vcpus", body: RequestBody([]))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self)
            == #"{"vcpus":[{"cr0":2147483665,"cr3":1052672,"cr4":32,"efer":1280,"id":0,"rip":1048608}]}"#)
        let memory = String(decoding: router.respond(method: "GET", target: "/vm/memory", body: RequestBody([])).body, as: UTF8.self)
        #expect(memory.contains(#""descriptor_path":"/proc/1/fd/9""#))
    }

    @Test func aVMThatCannotReadItsRegistersAnswers409() {
        let response = Router(control: FakeVMControl(), version: "1").respond(method: "GET", target: "/vm/vcpus", body: RequestBody([]))
        #expect(response.status == 409)
    }
}

