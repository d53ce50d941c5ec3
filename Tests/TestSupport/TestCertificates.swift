import Foundation

/// A fresh PKI for TLS tests (Tests/Tools/make_certificates.py, with the `cryptography` package
/// scripts/setup.sh installs): `ca.pem`; `server`, `client`, `expired` (ended a year ago) and
/// `elsewhere` (for 192.0.2.1 only) signed by it; `stranger` signed by `other-ca.pem`. Each NAME
/// has NAME.pem and NAME.key, mode 0600.
public enum TestCertificates {
    /// Writes the PKI into `directory` (made if missing) and returns it.
    public static func make(in directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = ProjectPaths.root.appendingPathComponent("Tests/Tools/make_certificates.py").path
        // posix_spawn (GuestProcess), not Foundation's Process, which leaks a weak reference per run.
        let process = try GuestProcess(executable: "/usr/bin/env", arguments: ["python3", script, directory])
        let status = try process.waitForExit(timeout: 60)
        guard status == 0 else { throw CertificateError(status: status) }
        return directory
    }

    /// `--tls-cert`, `--tls-key` and `--tls-ca` for certificate NAME of the PKI in `directory`.
    public static func options(_ directory: String, _ name: String, authority: String = "ca") -> [String] {
        ["--tls-cert", "\(directory)/\(name).pem", "--tls-key", "\(directory)/\(name).key", "--tls-ca", "\(directory)/\(authority).pem"]
    }

    public struct CertificateError: Error, CustomStringConvertible {
        let status: Int32
        public var description: String { "Tests/Tools/make_certificates.py exited with \(status) (is python3's cryptography installed? scripts/setup.sh installs it)" }
    }
}
