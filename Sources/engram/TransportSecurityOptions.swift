import ArgumentParser
import LinuxSystem
import Transport
import VMM

/// How page serving and migration connections are protected: `--secret-file` (TLS 1.3 with a
/// key derived from it, and the peers' proof), certificates, or `--insecure-plaintext`.
struct TransportSecurityOptions: ParsableArguments {
    @Option(help: "The shared secret: a file of at least 16 bytes that only its owner may read; it keys TLS 1.3 (as a pre-shared key) and the peers' proof.")
    var secretFile: String?
    @Option(help: "This end's TLS certificate (PEM chain), for mutual authentication with certificates instead of the secret's key.")
    var tlsCert: String?
    @Option(help: "The private key (PEM) of --tls-cert.") var tlsKey: String?
    @Option(help: "The certificate authority (PEM) that must have signed the peer's certificate.") var tlsCa: String?
    @Flag(help: "Send pages and state in clear text (no TLS): for loopback benchmarks only; both ends must say so.")
    var insecurePlaintext = false

    /// Whether any option was given (a restore from a local file needs none).
    var isEmpty: Bool { secretFile == nil && tlsCert == nil && tlsKey == nil && tlsCa == nil && !insecurePlaintext }

    /// The options with absolute paths (the VMM that reads them may run elsewhere).
    var options: TransportSecurity.Options {
        TransportSecurity.Options(
            secretFile: secretFile.map(PathName.absolute), certificate: tlsCert.map(PathName.absolute), key: tlsKey.map(PathName.absolute),
            authority: tlsCa.map(PathName.absolute), insecurePlaintext: insecurePlaintext)
    }

    /// A command that may go without (a restore from a file) checks only what was given.
    func validate() throws {
        guard !isEmpty else { return }
        if let conflict = options.conflict { throw ValidationError(conflict) }
    }

    /// Loads the secret and certificates, warning on stderr when the stream is plaintext.
    func load() throws -> TransportSecurity {
        let security: TransportSecurity
        do { security = try TransportSecurity.load(options) } catch { throw CommandFailure(error.description) }
        warnIfPlaintext()
        return security
    }

    /// One WARNING line when TLS is off.
    func warnIfPlaintext() {
        if insecurePlaintext {
            Diagnostics.note("WARNING: --insecure-plaintext: guest memory and state cross the network unencrypted; use it only on loopback")
        }
    }
}
