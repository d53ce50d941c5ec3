import LinuxSystem
import ArgumentParser
import Display
import FoundationEssentials
import Glibc
import Machine
import Transport
import VMM

/// `engram display FILE`: shows a VM's screen from its display file, in a process of its own.
///
/// The file (from `engram run --display FILE`) is mapped read-only; the VMM is never asked for
/// pixels. Keys typed by VNC viewers go to the control socket the file names (or `--api-socket`).
struct DisplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "display",
        abstract: "Show a VM's screen from its display file: serve it over VNC, or write a PNG screenshot.",
        discussion: """
            engram display vm.fb --png screen.png           one screenshot, then exit
            engram display vm.fb --vnc 127.0.0.1:5900       serve viewers until SIGINT/SIGTERM
            Viewers' keys reach the VM's i8042 keyboard through its control socket. VNC listens on
            loopback unless told otherwise; off loopback it needs --password-file, or --insecure to \
            serve the screen and keyboard to anyone who reaches it.
            """
    )

    @Argument(help: "The display file (engram run --display FILE).") var file: String
    @Option(help: "Serve the screen over VNC (RFB) on HOST:PORT; port 0 picks a free port.") var vnc: String?
    @Option(help: "Write a PNG screenshot to this file (mode 0600) and exit.") var png: String?
    @Option(help: "A file whose first line is the VNC password (VNC authentication uses its first 8 characters).")
    var passwordFile: String?
    @Option(help: "The VM's control socket for viewers' keys (default: the one the display file names).") var apiSocket: String?
    @Flag(help: "Ignore viewers' keys.") var viewOnly = false
    @Flag(help: "Allow --vnc off loopback without --password-file: anyone who reaches it sees the screen and can type.")
    var insecure = false

    @OptionGroup var seccomp: SeccompOptions

    func validate() throws {
        guard vnc != nil || png != nil else { throw ValidationError("say what to do: --vnc HOST:PORT and/or --png FILE") }
        if passwordFile != nil, vnc == nil { throw ValidationError("--password-file goes with --vnc") }
    }

    func run() throws {
        try seccomp.apply()
        TerminationSignals.block()
        let view: FramebufferView
        do { view = try FramebufferView(path: file) } catch { throw CommandFailure(error.description) }
        if let png {
            do { try PNGEncoder.write(view, to: png) } catch { throw CommandFailure(error.description) }
            if vnc == nil { return }
        }
        guard let vnc else { return }
        let endpoint: Endpoint
        do { endpoint = try Endpoint(parsing: vnc, listening: true) } catch { throw CommandFailure("--vnc \(vnc): \(error)") }
        let password = try passwordFile.map(Self.readPassword)
        let loopback = endpoint.host == "127.0.0.1" || endpoint.host == "::1" || endpoint.host == "localhost"
        guard loopback || password != nil || insecure else {
            throw CommandFailure("--vnc \(vnc): \(endpoint.host) is not loopback; give --password-file, or --insecure to let anyone who reaches it see the screen and type")
        }
        let keys = viewOnly ? nil : (apiSocket ?? view.controlSocketPath).map(KeyForwarder.init(socketPath:))
        let server: VNCServer
        do {
            server = try VNCServer(
                view: view, host: endpoint.host, port: endpoint.port, password: password, name: "engram \(view.fileName)",
                keyEvent: { keysym, down in keys?.send(keysym: keysym, down: down) }, log: { Diagnostics.note($0) })
        } catch {
            throw CommandFailure(error.description)
        }
        if !loopback && password == nil { Diagnostics.note("warning (--insecure): VNC on \(endpoint.host) without --password-file: anyone who reaches it sees the screen and can type") }
        let keyNote = keys == nil ? "view only" : "keys to \(apiSocket ?? view.controlSocketPath ?? "")"
        Diagnostics.note("VNC on \(Endpoint.describe(host: endpoint.host, port: server.boundPort)) showing \(file) (\(view.width)x\(view.height), \(keyNote))")
        do {
            try TerminationSignals.watch { _ in
                server.stop()
                Glibc.exit(0)
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        do { try server.run() } catch { throw CommandFailure(error.description) }
    }

    /// The password's bytes: the file's first line; an empty or unreadable file is refused.
    static func readPassword(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure("cannot read --password-file \(path)") }
        let line = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).first.map(Array.init) ?? []
        guard !line.isEmpty else { throw CommandFailure("--password-file \(path) is empty; expected the password on its first line") }
        return line
    }
}
