import CLinux
import Devices
import Glibc
import GuestMemory
import KVM
import LinuxSystem

/// An x86 KVM machine: guest memory regions, vCPUs on their own threads, and legacy devices.
package final class Machine: Sendable {
    package let configuration: MachineConfiguration
    package let memory: GuestMemoryMap
    let virtualMachine: VirtualMachine
    let vcpus: [VirtualCPU]
    let serial: Serial8250
    let ports: PortIOBus
    let devices: LegacyDevices
    /// The virtio devices (disks, entropy) and the thread serving them.
    let virtio: VirtioDevices
    /// Gives guest pages back to the host when the balloon asks; a lazy restore sets itself as its gate.
    package let memoryReclaimer = MemoryReclaimer()
    let kvm: KVMSystem
    /// What CPUID returns on each vCPU, as set when it was created; saved in snapshots.
    let cpuid: [[CPUIDEntry]]
    let control = RunControl()
    /// The pages written since the last snapshot and the file the next diff builds on.
    let dirtyPageTracker = DirtyPageTracker()
    /// Set while memory is still being filled lazily: blocks until every page is present
    /// (false if the fill failed). A snapshot waits on it, because the writer reads the
    /// backing's holes as zero pages.
    let memoryFillWait = Locked<(@Sendable () -> Bool)?>(nil)
    /// Shift state of the keyboard's keysym source (see `keyboardInput`).
    let keyboardTranslator = Locked(KeyboardTranslator())
    private let console: ConsoleOutput
    private let threadIDs: Locked<[CInt]>
    /// Threads started ahead for the vCPUs (a prepared shell's), woken by `start`.
    private let reservedThreads: [ReservedThread]
    private let savedTimer = Locked<[UInt8]?>(nil)
    private let startTime: UInt64

    /// Builds the machine: memory, KVM VM, devices, vCPUs, and the kernel loaded ready to enter.
    package convenience init(configuration: MachineConfiguration, consoleLogPath: String? = nil) throws(MachineError) {
        guard (1...MachineConfiguration.maximumCPUCount).contains(configuration.cpuCount) else {
            throw .cpuCount(configuration.cpuCount)
        }
        for name in configuration.backings.keys where !MachineConfiguration.regionNames.contains(name) {
            throw .memory(.unknownRegion(name: name, known: MachineConfiguration.regionNames))
        }
        let ram: GuestRegion
        do {
            ram = try GuestRegion(name: "ram", sizeInBytes: configuration.memorySizeInBytes,
                                  backing: configuration.backings["ram"] ?? .memfd)
        } catch { throw .memory(error) }
        let ramMappings = RAMLayout.mappings(for: ram)
        var regions = [ram], mappings = ramMappings
        if let display = configuration.display {
            let framebuffer = try Self.makeFramebuffer(display, backing: configuration.backings[Self.framebufferRegionName] ?? .memfd)
            regions.append(framebuffer.region)
            mappings.append(framebuffer.mapping)
        }
        let memory = GuestMemoryMap(regions: regions, mappings: mappings)
        let entry = try BootImageWriter.write(configuration, into: memory, ram: ramMappings)
        let shell = try Self.prepareShell(memory: memory)
        try self.init(configuration: configuration, memory: memory, shell: shell, consoleLogPath: consoleLogPath) { (vcpu, supported) throws(KVMError) in
            let cpuid = CPUIDTemplate.entries(from: supported, cpuID: vcpu.id, cpuCount: configuration.cpuCount)
            try VCPUSetup.configure(vcpu, cpuid: cpuid, entry: vcpu.id == 0 ? entry : nil)
            return cpuid
        }
        do { try shell.slots.wait() } catch { throw .kvm(error) }
    }

    /// Creates the KVM VM with its interrupt controller and timer, and starts registering a slot
    /// per mapping of `memory` in the background: the part of a machine that needs nothing but
    /// memory, so a restore can build it while it decodes the saved state. The machine's
    /// initializer waits for the slots.
    package static func prepareShell(memory: GuestMemoryMap) throws(MachineError) -> MachineShell {
        do {
            let kvm = try KVMSystem()
            let virtualMachine = try kvm.createVirtualMachine()
            try virtualMachine.setSystemAreas(tssAddress: X86Layout.kvmTSSAddress, identityMapAddress: X86Layout.kvmIdentityMapAddress)
            try virtualMachine.createInterruptController()
            try virtualMachine.createTimer()
            let supported = try kvm.supportedCPUID()
            let slots = SlotRegistration(virtualMachine, mappings: memory.mappings)
            return MachineShell(kvm: kvm, virtualMachine: virtualMachine, supportedCPUID: supported, slots: slots)
        } catch {
            throw .kvm(error)
        }
    }

    /// Builds the parts every machine has around `memory` and its prepared `shell`; `setUp`
    /// configures each new vCPU and returns the CPUID it gave it.
    init(
        configuration: MachineConfiguration, memory: GuestMemoryMap, shell: MachineShell, consoleLogPath: String?,
        appendToConsoleLog: Bool = false, setUp: (VirtualCPU, [CPUIDEntry]) throws(KVMError) -> [CPUIDEntry]
    ) throws(MachineError) {
        self.configuration = configuration
        self.memory = memory
        kvm = shell.kvm
        virtualMachine = shell.virtualMachine
        let supported = shell.supportedCPUID
        console = try ConsoleOutput(logPath: consoleLogPath, append: appendToConsoleLog)
        do {
            var created: [VirtualCPU] = []
            var cpuid: [[CPUIDEntry]] = []
            for id in 0..<UInt32(configuration.cpuCount) {
                let vcpu = Int(id) < shell.readyCPUs.count ? shell.readyCPUs[Int(id)] : try virtualMachine.createVirtualCPU(id: id)
                cpuid.append(try setUp(vcpu, supported))
                created.append(vcpu)
            }
            vcpus = created
            self.cpuid = cpuid
        } catch { throw .kvm(error) }
        threadIDs = Locked([CInt](repeating: 0, count: configuration.cpuCount))
        reservedThreads = shell.cpuThreads

        devices = try LegacyDevices(machine: virtualMachine, console: console)
        virtio = try VirtioDevices(configuration: configuration, memory: memory, machine: virtualMachine, reclaimer: memoryReclaimer)
        serial = devices.serial
        ports = devices.bus
        startTime = MonotonicClock.nanoseconds()
        devices.onGuestRequest { [weak self] outcome in self?.finish(outcome) }
    }

    /// Waits until a lazy fill has put every page in place; false if it failed. Returns at once
    /// when memory was not filled lazily.
    package func waitForMemoryFill() -> Bool {
        guard let wait = memoryFillWait.withLock({ $0 }) else { return true }
        return wait()
    }

    /// Makes snapshots wait for a lazy fill (see `memoryFillWait`).
    package func setMemoryFillWait(_ wait: @escaping @Sendable () -> Bool) { memoryFillWait.withLock { $0 = wait } }

    /// Starts one OS thread per vCPU; with `paused`, they park at once and `resume()` runs them
    /// (a VM that was paused when it was handed over stays paused).
    package func start(paused: Bool = false) throws(MachineError) {
        if paused, control.beginPaused(kick: { kickAllUnderLock() }) {
            savedTimer.withLock { $0 = try? virtualMachine.timerState() }
        }
        VCPUKick.installHandler()
        if !virtio.devices.isEmpty, !paused {  // a paused machine starts them on resume
            do { try virtio.ioThread.start() } catch { throw .thread(error) }
        }
        for (index, vcpu) in vcpus.enumerated() {
            let loop = VCPURunLoop(vcpu: vcpu, ports: ports, mmio: virtio.bus, control: control) { [weak self] outcome in self?.finish(outcome) }
            let body: @Sendable () -> Void = { [self] in
                VCPUKick.unblockInCurrentThread()
                self.threadIDs.withLock { $0[index] = NamedThread.currentThreadID }
                loop.run()
            }
            if index < reservedThreads.count, reservedThreads[index].run(body) { continue }
            do throws(SystemError) { try NamedThread.spawnDetached(name: "vcpu\(index)", role: .vcpu, body) } catch { throw .thread(error) }
        }
    }

    /// Blocks until the machine ends (guest power-off, error, shutdown request, console quit).
    package func waitForOutcome() -> MachineOutcome { control.waitForOutcome() }

    /// Ends the machine with `outcome` (the first report wins) and stops every vCPU.
    package func finish(_ outcome: MachineOutcome) {
        control.finish(outcome) { kickAllUnderLock() }
        signalAll()
    }

    /// Stops all vCPUs and freezes the in-kernel timer; returns when no vCPU runs guest code.
    package func pause() -> Bool {
        let paused = control.pause(vcpuCount: vcpus.count, kick: { kickAllUnderLock() }, signal: { signalAll() })
        if paused {
            savedTimer.withLock { $0 = try? virtualMachine.timerState() }
            // Requests finish before the state is read: none is in flight while paused.
            virtio.ioThread.stop()
        }
        return paused
    }

    /// Lets the vCPUs run again; the timer resumes from where it was paused, without catching up.
    package func resume() -> Bool {
        guard control.currentState == .paused else { return false }
        if let timer = savedTimer.withLock({ state in defer { state = nil }; return state }) {
            try? virtualMachine.setTimerState(timer)
        }
        guard control.resume() else { return false }
        if !virtio.devices.isEmpty { try? virtio.ioThread.start() }
        return true
    }

    /// The PIT state saved when the machine paused (what the guest's timer will resume from).
    func pausedTimerState() throws(KVMError) -> [UInt8] {
        if let saved = savedTimer.withLock({ $0 }) { return saved }
        return try virtualMachine.timerState()
    }

    /// Replaces the PIT state resume will load, from a saved kvm_pit_state2's bytes.
    func restorePausedTimer(_ bytes: [UInt8]) throws(KVMError) {
        try virtualMachine.setTimerState(bytes)
        savedTimer.withLock { $0 = bytes }
    }

    /// Whether the vCPUs run, are parked, or are ending.
    package var runState: MachineRunState { control.currentState }

    /// Seconds since the machine was built.
    package var uptimeSeconds: Double {
        Duration.nanoseconds(MonotonicClock.nanoseconds() - startTime).inSeconds
    }

    /// Feeds typed bytes to the guest's COM1; returns how many it took.
    package func consoleInput(_ bytes: [UInt8]) -> Int { serial.receive(bytes) }

    private func kickAllUnderLock() { for vcpu in vcpus { vcpu.setImmediateExit(true) } }

    private func signalAll() {
        for id in threadIDs.withLock({ $0 }) where id != 0 { VCPUKick.kick(threadID: id) }
    }
}
