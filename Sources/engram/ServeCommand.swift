import LinuxSystem
import ArgumentParser
import Glibc
import Machine
import Paging
import SnapshotFormat
import Transport
import VMM

/// `engram serve SNAPSHOT --listen HOST:PORT`: a page server for restores on other hosts.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a snapshot's state and memory to `engram restore tcp://HOST:PORT` on other hosts.",
        discussion: """
            Connections run over TLS 1.3: keyed by the shared secret (--secret-file, as an external pre-shared key), or \
            with certificates (--tls-cert, --tls-key, --tls-ca) for mutual authentication. Inside TLS, clients still prove \
            the secret (HMAC-SHA256 over fresh nonces, both ways), and every page carries its CRC32C. Clients may store a working set beside the snapshot (SNAPSHOT.workingset). docs/PROTOCOL.md has the protocol.
            """
    )

    @Argument(help: "The snapshot file (a full snapshot, or a diff whose parents are in its directory).") var snapshot: String
    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).") var listen: String
    @OptionGroup var security: TransportSecurityOptions
    @Option(help: "Connections served at once; more are turned away (each restoring client opens 2 or 3).") var maxConnections = 64
    @Flag(help: "Check every stored page's CRC before serving.") var verify = false

    @OptionGroup var seccomp: SeccompOptions

    func validate() throws {
        guard (1...4096).contains(maxConnections) else { throw ValidationError("--max-connections \(maxConnections): expected 1 to 4096") }
    }

    func run() throws {
        try seccomp.apply()
        TerminationSignals.block()
        let server: PageServer
        do {
            let chain = try SnapshotChain(path: snapshot)
            if verify { try chain.verifyAllPages() }
            let protection = try security.load()
            server = try PageServer(
                chain: chain, security: protection, listening: try Endpoint(parsing: listen, listening: true), maximumConnections: maxConnections,
                log: { Diagnostics.note($0) })
            let endpoint = try Endpoint(parsing: listen, listening: true)
            Diagnostics.note("serving \(snapshot) on \(Endpoint.describe(host: endpoint.host, port: server.port)) (fingerprint 0x\(String(chain.fingerprint, radix: 16))) over \(protection.summary)")
        } catch let error as SnapshotFormatError {
            throw CommandFailure(error.description)
        } catch let error as TransportError {
            throw CommandFailure(error.description)
        }
        do {
            try TerminationSignals.watch { signal in
                Diagnostics.note("page server stopped by signal \(signal)")
                Glibc.exit(0)
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        do { try server.run() } catch { throw CommandFailure("the page server stopped: \(error)") }
    }
}
