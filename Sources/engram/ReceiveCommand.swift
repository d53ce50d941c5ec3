import ArgumentParser
import Devices
import VMM

/// `engram receive --listen HOST:PORT`: waits for a live migration and runs the guest it brings.
struct ReceiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Wait for a live migration (engram migrate, PUT /vm/migrate) and run the guest it brings.",
        discussion: """
            The stream runs over TLS 1.3, keyed by the shared secret (--secret-file) or with certificates (--tls-cert, \
            --tls-key, --tls-ca); inside it the source proves the secret (HMAC-SHA256 both ways, as the page server). A peer without it \
            is refused and the wait goes on; a source whose stream is damaged or does not fit this host is refused with \
            an ERROR it passes on (its guest resumes there) and this command exits 1. Post-copy fetches pages from the \
            source's page server on first touch until all have arrived. docs/MIGRATION.md has the protocol.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).") var listen: String
    @OptionGroup var security: TransportSecurityOptions
    @Option(help: "Create PREFIX.NAME (mode 0600) for each named region (pre- and post-copy).") var sharedMaps: SharedMapsOption?
    @Flag(help: "Let --shared-maps replace existing files.") var force = false
    @Option(help: "Put main RAM in this hugetlbfs mount (pre- and post-copy; post-copy faults fetch whole huge pages).") var hugetlbfs: String?
    @Option(help: "Shared mode: map the source's memory files if they are in this directory (storage both hosts reach); without it, shared-mode migrations are refused.")
    var sharedDir: String?
    @Option(help: "Open the disks the source names (those no --disk replaces) if they are in this directory (storage both hosts reach); without it, each of the guest's disks needs a --disk.")
    var diskDir: String?
    @Option(help: "Put an arriving VM's framebuffer in this display file, for engram display.") var display: String?
    @Option(help: "Also copy the console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String?
    @Option(help: "Post-copy: seconds to keep reconnecting to a source page server that went away.") var reconnectTimeout = 300
    @OptionGroup var devices: DeviceOverrideOptions

    @OptionGroup var seccomp: SeccompOptions

    func run() throws {
        try seccomp.apply()
        if let conflict = security.options.conflict { throw ValidationError(conflict) }
        security.warnIfPlaintext()
        var request = ReceiveRequest(listen: listen, security: security.options)
        request.sharedMaps = sharedMaps.pathsByRegion
        request.replaceSharedMaps = force
        request.hugetlbfs = hugetlbfs
        request.sharedDirectory = sharedDir
        request.diskDirectory = diskDir
        request.display = display
        request.consoleLog = consoleLog
        request.apiSocket = apiSocket
        request.reconnectTimeoutSeconds = reconnectTimeout
        do { request.overrides = try devices.overrides() } catch { throw ValidationError(error.description) }
        try runToEnd { () throws(VMMError) in try VMReceive.run(request) }
    }
}
