import Devices
import KVM

/// One vCPU's loop: run guest code, answer its exits, park when paused, report how it ended.
///
/// Runs on the vCPU's own OS thread; the exit path allocates nothing and takes no locks
/// beyond the devices' brief ones.
struct VCPURunLoop {
    let vcpu: VirtualCPU
    let ports: PortIOBus
    let mmio: MMIOBus
    let control: RunControl
    let finish: @Sendable (MachineOutcome) -> Void

    func run() {
        while true {
            let exit: VCPUExit
            do {
                exit = try vcpu.runOnce()
            } catch {
                finish(.runFailure(vcpu: vcpu.id, message: error.description))
                return
            }
            switch exit {
            case .ioOut(let port, let size, let count):
                for index in 0..<count { ports.write(port: port, size: size, value: vcpu.ioData(index: index, size: size)) }
            case .ioIn(let port, let size, let count):
                for index in 0..<count { vcpu.setIOData(index: index, size: size, value: ports.read(port: port, size: size)) }
            case .mmioRead(let address, let size):
                vcpu.setMMIOData(mmio.read(address: address, size: size))
            case .mmioWrite(let address, let size, let value):
                mmio.write(address: address, size: size, value: value)
            case .halt:
                break
            case .interrupted:
                guard control.parkIfPaused(rearm: { vcpu.setImmediateExit(false) }) else { return }
            case .shutdown:
                finish(.tripleFault(vcpu: vcpu.id, rip: vcpu.instructionPointer()))
                return
            case .systemEvent(let type):
                finish(type == 2 ? .reset : .poweredOff)  // KVM_SYSTEM_EVENT_RESET is 2
                return
            case .internalError(let suberror):
                finish(.internalError(vcpu: vcpu.id, suberror: suberror, rip: vcpu.instructionPointer()))
                return
            case .failEntry(let reason):
                finish(.entryFailure(vcpu: vcpu.id, reason: reason, rip: vcpu.instructionPointer()))
                return
            case .unhandled(let reason):
                finish(.unhandledExit(vcpu: vcpu.id, reason: reason, rip: vcpu.instructionPointer()))
                return
            }
        }
    }
}
