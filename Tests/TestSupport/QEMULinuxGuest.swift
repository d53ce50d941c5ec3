import Foundation

/// Debian's stock kernel and the busybox initramfs running under QEMU's TCG emulator, with guest
/// RAM in a file the test can read while the guest runs.
///
/// The KVM on the development machines cannot run a stock kernel (guest/linux/README.md), so
/// tests that need a real Linux guest's memory take it from QEMU: its RAM file
/// (memory-backend-file, share=on), its migration stream, its dump-guest-memory ELF. QEMU's own
/// monitor is the independent reference for what the guest's memory holds.
///
/// QEMU is killed by `stop()`, by deinit, and, for an instance a static or a task keeps alive,
/// at process exit. Every wait has a timeout that fails with what the guest printed so far.
public final class QEMULinuxGuest: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// qemu-system-x86_64 on the PATH (or in /usr/bin), if installed.
    public static var qemuExecutable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return directories.map { $0 + "/qemu-system-x86_64" }.first { access($0, X_OK) == 0 }
    }

    /// QEMU and the Linux guest image (guest/linux/build-image.sh) are both present.
    public static var available: Bool { qemuExecutable != nil && TestEnvironment.hasLinuxImage }

    /// Where the kernel package was unpacked (System.map, kernel-release).
    public static var kernelDirectory: URL { ProjectPaths.root.appendingPathComponent("guest/linux/build") }

    /// The kernel release the image was built from, e.g. "6.1.0-56-amd64".
    public static var kernelRelease: String? {
        (try? String(contentsOf: kernelDirectory.appendingPathComponent("kernel-release"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Holds the RAM file, the QMP socket and anything the test writes beside them.
    public let directory = TemporaryDirectory()
    /// The guest's RAM, laid out as QEMU's pc machine sees it (offset = guest-physical address below 3.5 GiB).
    public let ramFile: String
    public let memoryBytes: Int
    /// The QMP connection (capabilities already negotiated).
    public let qmp: QMPConnection
    private let process: GuestProcess
    private let lock = NSLock()
    private var nextMarker = 1

    /// Boots the guest and returns once its shell takes commands (console printk quietened).
    ///
    /// `nokaslr` keeps kernel addresses equal to the kernel's link addresses; `panic=-1` with
    /// `-no-reboot` turns a guest panic into a QEMU exit, so waits fail at once instead of timing out.
    public init(memoryMiB: Int = 256, bootTimeout: TimeInterval = 180) throws {
        guard let qemu = Self.qemuExecutable else { throw Failure("qemu-system-x86_64 is not installed") }
        guard TestEnvironment.hasLinuxImage else { throw Failure("no Linux guest image; run guest/linux/build-image.sh") }
        memoryBytes = memoryMiB << 20
        ramFile = directory.path("guest.ram")
        try Self.createPrivateFile(ramFile, size: memoryBytes)
        let socket = directory.path("qmp.sock")
        process = try GuestProcess(executable: qemu, arguments: [
            "-accel", "tcg", "-M", "pc", "-m", "\(memoryMiB)M", "-smp", "1",
            "-display", "none", "-nodefaults", "-no-reboot", "-serial", "stdio",
            "-kernel", ProjectPaths.linuxKernel, "-initrd", ProjectPaths.linuxInitramfs,
            "-append", "console=ttyS0 nokaslr panic=-1",
            "-object", "memory-backend-file,id=pc.ram,size=\(memoryMiB)M,mem-path=\(ramFile),share=on",
            "-machine", "memory-backend=pc.ram",
            "-qmp", "unix:\(socket),server=on,wait=off",
        ])
        ExitReaper.register(process.processID)
        do {
            qmp = try QMPConnection(socketPath: socket, isAlive: { [process] in process.isRunning })
            try process.waitForLine(containing: "ENGRAM-LINUX-INIT READY", timeout: bootTimeout)
            try waitForText("# ", timeout: 60)  // the shell's prompt: typed keys now reach its line editor
            _ = try shell("dmesg -n 1")  // kernel messages would interleave with command output
        } catch {
            process.kill()
            ExitReaper.unregister(process.processID)
            throw error
        }
    }

    deinit { stop() }

    /// Kills QEMU (SIGKILL: the guest's state is of no further use) and waits for it.
    public func stop() {
        process.kill()
        ExitReaper.unregister(process.processID)
    }

    public var isRunning: Bool { process.isRunning }

    /// Everything the serial console printed so far.
    public var consoleText: String { process.consoleText }

    // MARK: Serial console

    /// Runs `command` in the guest's shell; returns the lines it printed (without CR or escape sequences).
    ///
    /// The output is bracketed by two marker lines the shell computes (`$((n))`), so the echo of
    /// the typed line, which holds only the unexpanded form, never matches them.
    @discardableResult
    public func shell(_ command: String, timeout: TimeInterval = 60) throws -> [String] {
        let marker = lock.withLock { defer { nextMarker += 1 }; return nextMarker }
        let begin = "ENGRAM-SHELL-BEGIN-\(marker)-OK", end = "ENGRAM-SHELL-END-\(marker)-OK"
        let offset = process.consoleText.utf8.count
        process.send("echo ENGRAM-SHELL-BEGIN-$((\(marker)))-OK; \(command); echo ENGRAM-SHELL-END-$((\(marker)))-OK\r")
        try process.waitForLine(containing: end, after: offset, timeout: timeout)
        let lines = Self.plainLines(String(decoding: Array(process.consoleText.utf8.dropFirst(offset)), as: UTF8.self))
        guard let first = lines.firstIndex(of: begin), let last = lines.lastIndex(of: end), first < last else {
            throw Failure("shell output of \"\(command)\" lacks its markers: \(lines.suffix(20))")
        }
        return Array(lines[(first + 1)..<last])
    }

    /// Sends `line` to the shell and waits for an output line containing `expect` (which the typed
    /// text must not contain, or its echo would match); returns that line.
    @discardableResult
    public func type(_ line: String, expect: String, timeout: TimeInterval = 60) throws -> String {
        guard !line.contains(expect) else { throw Failure("the echo of \"\(line)\" would match \"\(expect)\"") }
        return try process.command(line, expect: expect, timeout: timeout)
    }

    /// Waits until the console shows `text` (a complete line or not) after `offset` bytes.
    public func waitForText(_ text: String, after offset: Int = 0, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !String(decoding: Array(process.consoleText.utf8.dropFirst(offset)), as: UTF8.self).contains(text) {
            guard process.isRunning else { throw Failure("QEMU exited before the console showed \"\(text)\"; \(diagnostics)") }
            guard Date() < deadline else { throw Failure("the console did not show \"\(text)\" within \(Int(timeout)) s; \(diagnostics)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// Console lines with carriage returns and ANSI escape sequences (ash's line editing) removed.
    static func plainLines(_ text: String) -> [String] {
        let withoutEscapes = text.replacingOccurrences(of: "\u{1B}\\[[0-9;?]*[A-Za-z]", with: "", options: .regularExpression)
        return withoutEscapes.replacingOccurrences(of: "\r", with: "").split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    private var diagnostics: String { "stderr: \(process.errorText.suffix(600)); console: \(process.consoleText.suffix(1500))" }

    // MARK: Kernel symbols

    /// The address of kernel symbol `name`: from System.map when the kernel package ships a real
    /// one, else from the running guest's /proc/kallsyms (Debian's package ships only a
    /// placeholder System.map; the real one is in the -dbg package). With nokaslr both agree.
    public func symbolAddress(_ name: String) throws -> UInt64 {
        if let map = try? KernelSymbolMap.packaged(), let address = map.address(of: name) { return address }
        let lines = try shell("grep -w \(name) /proc/kallsyms")
        guard let address = KernelSymbolMap(text: lines.joined(separator: "\n")).address(of: name) else {
            throw Failure("\(name) is neither in System.map nor in the guest's /proc/kallsyms: \(lines)")
        }
        guard address != 0 else { throw Failure("/proc/kallsyms hides addresses (kptr_restrict): \(lines)") }
        return address
    }

    // MARK: Monitor

    /// Runs an HMP command through QMP's human-monitor-command; returns its text.
    public func humanMonitor(_ commandLine: String) throws -> String {
        let reply = try qmp.execute("human-monitor-command", arguments: ["command-line": commandLine])
        guard let text = reply as? String else { throw Failure("human-monitor-command \(commandLine) returned \(reply)") }
        return text
    }

    /// The registers `info registers` shows for the first vCPU, by name (RAX, RIP, CR3, EFER, ...).
    public func registers() throws -> [String: UInt64] {
        let text = try humanMonitor("info registers")
        var registers: [String: UInt64] = [:]
        // "CR0=80050033 CR2=0000000003713758 CR3=00000000060fe000", "R8 =0000000000000001"
        let pattern = try NSRegularExpression(pattern: "\\b([A-Z][A-Z0-9]*) ?=([0-9a-f]+)\\b")
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let name = Range(match.range(at: 1), in: text), let value = Range(match.range(at: 2), in: text) else { continue }
            if registers[String(text[name])] == nil, let number = UInt64(text[value], radix: 16) { registers[String(text[name])] = number }
        }
        guard registers["CR3"] != nil else { throw Failure("no CR3 in info registers: \(text)") }
        return registers
    }

    /// CR3 of the first vCPU: the page tables HMP's `x` walks.
    public func cr3() throws -> UInt64 { try registers()["CR3"]! }

    /// `count` bytes at guest-virtual `address`, read by QEMU through the vCPU's page tables (HMP `x`).
    public func readVirtual(_ address: UInt64, count: Int) throws -> [UInt8] {
        try Self.parseMemoryDump(humanMonitor("x /\(count)xb 0x\(String(address, radix: 16))"), count: count)
    }

    /// `count` bytes at guest-physical `address` (HMP `xp`).
    public func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8] {
        try Self.parseMemoryDump(humanMonitor("xp /\(count)xb 0x\(String(address, radix: 16))"), count: count)
    }

    /// The guest-physical address QEMU translates `virtual` to (HMP `gva2gpa`).
    public func physicalAddress(ofVirtual virtual: UInt64) throws -> UInt64 {
        let text = try humanMonitor("gva2gpa 0x\(String(virtual, radix: 16))")
        // "gpa: 0x2161900"
        guard let range = text.range(of: "gpa: 0x"),
              let address = UInt64(text[range.upperBound...].prefix { $0.isHexDigit }, radix: 16) else {
            throw Failure("gva2gpa 0x\(String(virtual, radix: 16)): \(text)")
        }
        return address
    }

    /// The bytes of an HMP `x /Nxb` or `xp /Nxb` reply ("ffffffff82000200: 0x20 0x31 ...", 8 a line).
    static func parseMemoryDump(_ text: String, count: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            for token in line[line.index(after: colon)...].split(separator: " ") where token.hasPrefix("0x") {
                guard let byte = UInt8(token.dropFirst(2), radix: 16) else { throw Failure("bad byte \(token) in monitor output: \(text)") }
                bytes.append(byte)
            }
        }
        guard bytes.count == count else { throw Failure("monitor showed \(bytes.count) bytes, expected \(count): \(text)") }
        return bytes
    }

    /// "running", "paused", "postmigrate", ... (query-status).
    public func runState() throws -> String {
        let reply = try qmp.execute("query-status") as? [String: Any]
        guard let status = reply?["status"] as? String else { throw Failure("query-status returned \(String(describing: reply))") }
        return status
    }

    /// Pauses the vCPUs (QMP stop).
    public func pause() throws { _ = try qmp.execute("stop") }

    /// Resumes the vCPUs (QMP cont), also after a completed migration left the guest in postmigrate.
    public func resume() throws { _ = try qmp.execute("cont") }

    /// Migrates the guest into `path` (`migrate "exec:cat > path"`) and waits until QEMU reports it
    /// completed. The guest is left paused (postmigrate); `resume()` continues it.
    public func migrate(to path: String, timeout: TimeInterval = 120) throws {
        _ = try qmp.execute("migrate", arguments: ["uri": "exec:cat > '\(path)'"])
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let info = try qmp.execute("query-migrate") as? [String: Any] ?? [:]
            switch info["status"] as? String {
            case "completed": return
            case "failed", "cancelled":
                throw Failure("migration to \(path) ended \(info["status"] ?? ""): \(info["error-desc"] ?? info)")
            default:
                guard Date() < deadline else {
                    _ = try? qmp.execute("migrate_cancel")
                    throw Failure("migration to \(path) not completed within \(Int(timeout)) s: \(info)")
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// Writes an ELF core of guest memory with QEMU's dump-guest-memory (synchronous).
    /// `paging: false` dumps guest-physical memory, one PT_LOAD per RAM block, plus CPU notes.
    public func dumpGuestMemory(to path: String, paging: Bool = false, timeout: TimeInterval = 120) throws {
        _ = try qmp.execute("dump-guest-memory", arguments: ["paging": paging, "protocol": "file:\(path)"], timeout: timeout)
        let info = try qmp.execute("query-dump") as? [String: Any] ?? [:]
        guard info["status"] as? String == "completed" else { throw Failure("dump-guest-memory to \(path): \(info)") }
    }

    /// Creates `path` readable and writable by its owner only, `size` bytes of zeros (sparse).
    static func createPrivateFile(_ path: String, size: Int) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Failure("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw Failure("cannot size \(path): \(String(cString: strerror(errno)))") }
    }
}

/// Runs a program to completion with its standard output in a file, so binary output (`--raw`)
/// arrives byte for byte; standard error is returned as text.
public func runCapturingBytes(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws
    -> (status: Int32, output: Data, errors: String) {
    let directory = TemporaryDirectory()
    let outputPath = directory.path("stdout"), errorPath = directory.path("stderr")
    let output = open(outputPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let errors = open(errorPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
    defer { close(output); close(errors); close(input) }
    guard output >= 0, errors >= 0, input >= 0 else { throw QEMULinuxGuest.Failure("cannot create output files in \(directory.url.path)") }
    let child = try ChildProcess(executable: executable, arguments: arguments, standardInput: input, standardOutput: output,
                                 standardError: errors, closeInChild: [])
    let deadline = Date().addingTimeInterval(timeout)
    while child.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    if child.isRunning {
        child.kill()
        child.waitUntilExit()
        throw QEMULinuxGuest.Failure("\(executable) \(arguments.joined(separator: " ")) still running after \(Int(timeout)) s")
    }
    let errorText = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: errorPath))) ?? Data(), as: UTF8.self)
    return (child.exitStatus ?? -1, try Data(contentsOf: URL(fileURLWithPath: outputPath)), errorText)
}
