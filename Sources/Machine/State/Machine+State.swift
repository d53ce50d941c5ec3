import CLinux
import Devices
import KVM

extension Machine {
    /// Saves vCPU, interrupt-controller, timer, clock and device state. The machine must be paused.
    package func saveState() throws(MachineError) -> MachineStateRecord {
        guard control.currentState == .paused else { throw .notPaused(operation: "save its state") }
        do {
            let msrIndices = try kvm.savedMSRIndices()
            let records = try vcpus.map { (vcpu) throws(KVMError) -> VCPUStateRecord in
                var blocks: [VCPUStateBlock: [UInt8]] = [:]
                for block in VCPUStateBlock.allCases { blocks[block] = try vcpu.stateBlock(block) }
                let msrs = try vcpu.modelSpecificRegisters(msrIndices).map { ModelSpecificRegister(index: $0.index, value: $0.value) }
                return VCPUStateRecord(id: vcpu.id, cpuid: cpuid[Int(vcpu.id)], blocks: blocks, modelSpecificRegisters: msrs)
            }
            var chips: [InterruptControllerChip: [UInt8]] = [:]
            for chip in InterruptControllerChip.allCases { chips[chip] = try virtualMachine.interruptControllerState(chip) }
            let timerBytes = try pausedTimerState()
            return MachineStateRecord(
                configuration: SavedConfiguration(
                    cpuCount: configuration.cpuCount, memorySizeInBytes: configuration.memorySizeInBytes,
                    regionNames: memory.regions.map(\.name), kernelPath: configuration.kernelPath,
                    commandLine: configuration.commandLine),
                vcpus: records, interruptControllers: chips,
                timer: timerBytes,
                clockNanoseconds: try virtualMachine.clock(),
                serial: serial.saveState(), keyboardController: devices.keyboardController.saveState(),
                powerControl: devices.powerControl.saveState(),
                virtio: virtio.devices.isEmpty ? nil : virtio.saveState(),
                generationID: configuration.generationID)
        } catch {
            throw .kvm(error)
        }
    }

    /// Loads a saved state into this paused machine (same configuration); resume continues from it.
    package func restoreState(_ record: MachineStateRecord) throws(MachineError) {
        guard control.currentState == .paused else { throw .notPaused(operation: "restore state") }
        try applyState(record, timerWhenResumed: true)
    }

    /// Loads `record` into the vCPUs, VM and devices; no vCPU may be running. The PIT state
    /// is either loaded now or kept for `resume()` (a paused machine reloads it on resume).
    /// `kept` are the devices' host sides a live update handed over, by device name.
    func applyState(_ record: MachineStateRecord, timerWhenResumed: Bool, kept: [String: VirtioHandover] = [:]) throws(MachineError) {
        try SavedStateCheck.compatible(record, with: self)
        do {
            try virtualMachine.setClock(record.clockNanoseconds)
            for chip in InterruptControllerChip.allCases {
                if let bytes = record.interruptControllers[chip] { try virtualMachine.setInterruptControllerState(bytes) }
            }
            for (vcpu, saved) in zip(vcpus, record.vcpus) {
                for block in VCPUStateBlock.restoreOrder {
                    guard let bytes = saved.blocks[block] else { continue }
                    try vcpu.setStateBlock(block, bytes)
                    if block == .specialRegisters {
                        try vcpu.setModelSpecificRegisters(saved.modelSpecificRegisters.map { ($0.index, $0.value) })
                    }
                }
            }
            if timerWhenResumed {
                try restorePausedTimer(record.timer)
            } else {
                try virtualMachine.setTimerState(record.timer)
            }
        } catch {
            throw .kvm(error)
        }
        serial.restoreState(record.serial)
        try virtio.restoreState(record.virtio ?? [], kept: kept)
        devices.keyboardController.restoreState(record.keyboardController)
        devices.powerControl.restoreState(record.powerControl)
    }
}
