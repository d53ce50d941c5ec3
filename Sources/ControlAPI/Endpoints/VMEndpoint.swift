
/// The /vm resource: state, memory regions, and the pause, resume and shutdown actions.
///
/// Actions answer 200 with the state read back from the machine afterwards (`{"state": "paused"}`),
/// so a client sees the effect without a second request.
package enum VMEndpoint {
    /// Adds GET /vm, GET /vm/memory, GET /vm/vcpus, GET /vm/devices, PATCH /vm/disk, PUT /vm/pause, PUT /vm/resume and
    /// PUT /vm/shutdown to `router`.
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.vm) { _ in try .json(control.vmInfo()) }
        router.add(.memory) { _ in try .json(MemoryRegionList(regions: control.memoryRegions())) }
        router.add(.vcpus) { _ in try .json(ProcessorRegisterList(vcpus: control.processorRegisters())) }
        router.add(.devices) { _ in try .json(DeviceList(devices: control.devices())) }
        router.add(.disk) { body in try .json(control.updateDisk(body.decode(DiskUpdate.self))) }
        router.add(.pause) { _ in
            try control.pause()
            return try .json(VMStateReport(state: control.vmInfo().state))
        }
        router.add(.resume) { _ in
            try control.resume()
            return try .json(VMStateReport(state: control.vmInfo().state))
        }
        router.add(.shutdown) { _ in
            // The machine only starts ending here; ControlServer.stop() writes this answer before closing.
            try control.shutdown()
            return try .json(VMStateReport(state: control.vmInfo().state))
        }
    }
}
