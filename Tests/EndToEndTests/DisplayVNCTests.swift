import Foundation
import Testing
import TestSupport

/// The guest's screen as a file, shown by a separate `engram display` process to a real VNC
/// client (vncdotool), with keys typed in the viewer reaching the guest's i8042 keyboard.
@Suite(.enabled(if: TestKernel.available && VNCClientCheck.available, "needs /dev/kvm, the test kernel and vncdotool (pip)"), .serialized)
struct DisplayVNCTests {
    let directory = TemporaryDirectory()

    static let tools = ProjectPaths.root.appendingPathComponent("Tests/Tools").path

    /// Runs python3 with `arguments`; returns its status and output.
    @discardableResult
    static func python(_ arguments: [String], timeout: TimeInterval = 60) throws -> (status: Int32, output: String, errors: String) {
        let process = try GuestProcess(executable: "/usr/bin/env", arguments: ["python3"] + arguments)
        let status = try process.waitForExit(timeout: timeout)
        return (status, process.consoleText, process.errorText)
    }

    /// The text rows of a screenshot or display file, read back through the kernel's font.
    static func screenText(_ arguments: [String]) throws -> [String] {
        let result = try python(["\(tools)/screen_text.py"] + arguments)
        #expect(result.status == 0, "\(result.errors)")
        return result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A viewer action: `capture FILE` or `type TEXT`.
    static func viewer(_ port: Int, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try python(["\(tools)/vnc_client.py", "127.0.0.1::\(port)"] + arguments)
    }

    /// Boots the test kernel with a display and a control socket.
    func bootWithDisplay(_ commands: String) throws -> (GuestProcess, display: String, socket: String) {
        let name = UUID().uuidString.prefix(6)
        let display = directory.path("screen-\(name).fb"), socket = directory.path("api-\(name).sock")
        let (guest, _) = try TestKernel.boot(cmdline: "cpus=1 -- \(commands)", extra: ["--display", display, "--api-socket", socket])
        return (guest, display, socket)
    }

    /// Starts `engram display FILE --vnc 127.0.0.1:0 ARGS` and returns it with the port it chose.
    func serve(_ display: String, _ extra: [String] = []) throws -> (GuestProcess, port: Int) {
        let server = try GuestProcess.engram(["display", display, "--vnc", "127.0.0.1:0"] + extra)
        let line = try server.waitForErrorLine(containing: "VNC on 127.0.0.1:")
        let port = line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }.flatMap { Int($0.dropFirst("127.0.0.1:".count)) }
        return (server, try #require(port, "\(line)"))
    }

    @Test func viewersSeeTheConsoleAsTheFileHoldsIt() throws {
        let (guest, display, _) = try bootWithDisplay("tag shown-on-the-screen")
        defer { guest.stop() }
        _ = try guest.waitForLine(containing: "TAG shown-on-the-screen gpa=0x300000")
        _ = try guest.waitForLine(containing: "> ", after: 0)
        let (server, port) = try serve(display)
        defer { server.stop() }

        let raw = directory.path("raw.png"), zrle = directory.path("zrle.png"), file = directory.path("file.png")
        for (path, encoding) in [(raw, "raw"), (zrle, "zrle")] {
            let result = try Self.viewer(port, ["capture", path, "--encoding", encoding])
            #expect(result.status == 0, "\(encoding): \(result.errors)")
        }
        #expect(try runEngram(["display", display, "--png", file]).status == 0)

        let text = try Self.screenText([raw])
        #expect(text.contains("TAG shown-on-the-screen gpa=0x300000"), "\(text.prefix(8))")
        #expect(text.contains { $0.hasPrefix(" ENGRAM TEST KERNEL 1.0 | cpus=1 | mem=256 MiB") && $0.hasSuffix("commands=1") })
        #expect(try Self.screenText(["--display", display]) == text)
        for other in [zrle, file] {
            let same = try Self.python(["\(Self.tools)/images_equal.py", raw, other])
            #expect(same.status == 0, "\(other): \(same.errors)")
        }
    }

    @Test func keysTypedInAViewerRunCommands() throws {
        let (guest, display, _) = try bootWithDisplay("ticks")
        defer { guest.stop() }
        _ = try guest.waitForLine(containing: "TICKS ")
        let (server, port) = try serve(display)
        defer { server.stop() }

        let typed = try Self.viewer(port, ["type", "tag Typed-Over-VNC!"])
        #expect(typed.status == 0, "\(typed.errors)")
        _ = try guest.waitForLine(containing: "TAG Typed-Over-VNC! gpa=0x300000", timeout: 30)

        let shot = directory.path("typed.png")
        #expect(try Self.viewer(port, ["capture", shot]).status == 0)
        let text = try Self.screenText([shot])
        #expect(text.contains("> tag Typed-Over-VNC!"), "\(text.prefix(8))")
        #expect(text.contains("TAG Typed-Over-VNC! gpa=0x300000"))
        #expect(text.contains { $0.hasSuffix("commands=2") })
    }

    @Test func aPasswordKeepsOutViewersWithoutIt() throws {
        let (guest, display, _) = try bootWithDisplay("ticks")
        defer { guest.stop() }
        let passwordFile = directory.path("vnc-password")
        try "s3cret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let (server, port) = try serve(display, ["--password-file", passwordFile])
        defer { server.stop() }

        #expect(try Self.viewer(port, ["capture", directory.path("none.png"), "--timeout", "10"]).status != 0)
        #expect(try Self.viewer(port, ["capture", directory.path("wrong.png"), "--password", "guess", "--timeout", "10"]).status != 0)
        // Several viewers at once, each with the password.
        let viewers = try (0..<3).map { index in
            try GuestProcess(executable: "/usr/bin/env", arguments: [
                "python3", "\(Self.tools)/vnc_client.py", "127.0.0.1::\(port)", "capture", directory.path("ok\(index).png"), "--password", "s3cret",
            ])
        }
        for viewer in viewers { #expect(try viewer.waitForExit(timeout: 60) == 0, "\(viewer.errorText); the server said: \(server.errorText)") }
        #expect(try Self.screenText([directory.path("ok2.png")]).contains { $0.hasPrefix("TICKS ") })
        #expect(!server.errorText.contains("Fatal"), "\(server.errorText)")
    }

    /// A snapshot, at `name`, of a guest with a display that ran `tag TAG`; the guest is stopped.
    func snapshotOfATaggedScreen(_ tag: String, name: String) throws -> String {
        let (guest, _, socket) = try bootWithDisplay("tag \(tag)")
        defer { guest.stop() }
        _ = try guest.waitForLine(containing: "TAG \(tag)")
        let snapshot = directory.path(name)
        let written = try runEngram(["snapshot", socket, snapshot])
        #expect(written.status == 0, "\(written.errors)")
        return snapshot
    }

    @Test func aRestoredVMKeepsItsScreen() throws {
        let snapshot = try snapshotOfATaggedScreen("before-the-snapshot", name: "display.snap")

        let restoredDisplay = directory.path("restored.fb"), restoredSocket = directory.path("restored.sock")
        let restored = try GuestProcess.engram(["restore", snapshot, "--memory", "copy", "--display", restoredDisplay, "--api-socket", restoredSocket])
        defer { restored.stop() }
        _ = try restored.waitForErrorLine(containing: "control API on")
        #expect(try Self.screenText(["--display", restoredDisplay]).contains("TAG before-the-snapshot gpa=0x300000"))
        restored.send("tag after-the-restore\r")
        _ = try restored.waitForLine(containing: "TAG after-the-restore")
        let (server, port) = try serve(restoredDisplay)
        defer { server.stop() }
        let shot = directory.path("restored.png")
        #expect(try Self.viewer(port, ["capture", shot]).status == 0)
        #expect(try Self.screenText([shot]).contains("TAG after-the-restore gpa=0x300000"))
        // Keys go to the restored VM's socket, which the restore wrote into the display file.
        #expect(try Self.viewer(port, ["type", "ticks"]).status == 0)
        _ = try restored.waitForLine(containing: "TICKS ", timeout: 30)
    }

    /// A lazy restore copies the screen's region before its pager takes the memory: a viewer
    /// that maps the display file while the rest still fills (held back here while a working
    /// set is recorded) sees the saved screen and the new VM's socket. (It found the header page
    /// missing, and reading it put a page of zeros there that the pager could no longer fill.)
    @Test func aLazilyRestoredScreenIsWholeWhileTheMemoryFills() throws {
        let snapshot = try snapshotOfATaggedScreen("before-the-lazy-snapshot", name: "lazy-display.snap")

        // On tmpfs: userfaultfd fills shared memory there, not in a disk file.
        let restoredDisplay = "/dev/shm/engram-test-\(UUID().uuidString.prefix(8)).fb", restoredSocket = directory.path("lazy.sock")
        defer { unlink(restoredDisplay) }
        let restored = try GuestProcess.engram(["restore", snapshot, "--memory", "lazy", "--record-working-set", "30",
                                                "--display", restoredDisplay, "--api-socket", restoredSocket])
        defer { restored.stop() }
        _ = try restored.waitForErrorLine(containing: "control API on")
        let stats = try RestoreTests.memoryStatistics(restoredSocket) { $0["lazy"] != nil }
        #expect((stats["lazy"] as? [String: Any])?["complete"] as? Bool == false, "the fill is held back: \(stats)")
        #expect(try Self.screenText(["--display", restoredDisplay]).contains("TAG before-the-lazy-snapshot gpa=0x300000"))
        let (server, port) = try serve(restoredDisplay)
        defer { server.stop() }
        // Keys go to the restored VM's socket, which the restore wrote into the display file.
        #expect(try Self.viewer(port, ["type", "ticks"]).status == 0)
        _ = try restored.waitForLine(containing: "TICKS ", timeout: 30)
    }

    @Test func badDisplayFilesAndAddressesAreRefusedInOneLine() throws {
        func refusal(_ arguments: [String], _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try runEngram(arguments)
            #expect(result.status != 0, sourceLocation: sourceLocation)
            #expect(result.errors.split(separator: "\n").count == 1, "\(result.errors)", sourceLocation: sourceLocation)
            #expect(result.errors.contains(expected), "\(result.errors)", sourceLocation: sourceLocation)
        }
        let notDisplay = directory.path("notes.txt")
        try "important notes\n".write(toFile: notDisplay, atomically: true, encoding: .utf8)
        try refusal(["display", directory.path("missing.fb"), "--png", directory.path("x.png")], "missing.fb")
        try refusal(["display", notDisplay, "--png", directory.path("x.png")], "notes.txt is 16 bytes; expected at least its 4096-byte header")
        try refusal(["run", "--kernel", ProjectPaths.testKernel, "--display", notDisplay], "is not an Engram display file")
        #expect(try String(contentsOfFile: notDisplay, encoding: .utf8) == "important notes\n")
        let small = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--display", directory.path("d.fb"), "--display-size", "20x20"])
        #expect(small.status != 0 && small.errors.hasPrefix("Error: --display-size: display size 20x20 is outside 64..8192"), "\(small.errors)")

        let (guest, display, _) = try bootWithDisplay("ticks")
        defer { guest.stop() }
        let (server, port) = try serve(display)
        defer { server.stop() }
        try refusal(["display", display, "--vnc", "127.0.0.1:\(port)"], "in use")
        try refusal(["display", display, "--vnc", "nonsense"], "nonsense")
        // Off loopback without a password: refused unless the user says --insecure.
        try refusal(["display", display, "--vnc", "0.0.0.0:0"], "is not loopback; give --password-file, or --insecure")
    }
}

/// Whether vncdotool (and Pillow) can be imported; setup.sh installs them.
enum VNCClientCheck {
    static var available: Bool { (try? DisplayVNCTests.python(["-c", "import vncdotool, PIL"]).status) == 0 }
}
