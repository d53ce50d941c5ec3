import ControlAPI
import Devices
import Machine
import Paging
import Transport

/// What `engram standby` was started with: the shape every snapshot it restores must have, and
/// what each restore gets unless its request says otherwise.
package struct StandbyOptions: Sendable {
    package var cpuCount: Int
    package var memorySizeInBytes: UInt64
    package var apiSocket: String
    package var consoleLog: String?
    /// A hugetlbfs mount for the placeholder RAM: restores fill huge pages (copy and lazy only).
    package var hugetlbfs: String?
    /// Disks, taps and a vsock socket replacing the restored VM's (a request's own replace these).
    package var devices = DeviceOverrides()
    /// A page server's shared secret, certificates or plaintext, for tcp:// snapshots.
    package var security = TransportSecurity.Options()
    /// `security` loaded when the standby VMM starts (when it names credentials), so a request
    /// does not pay for reading them and OpenSSL's set-up.
    package var preparedSecurity: TransportSecurity?
    package var reconnectTimeoutSeconds = 300
    /// The store and chunk cache for an s3:// snapshot, by its name.
    package var objectStore: (@Sendable (String) throws(VMMError) -> ObjectStoreAccess)?

    package init(cpuCount: Int, memorySizeInBytes: UInt64, apiSocket: String) {
        self.cpuCount = cpuCount
        self.memorySizeInBytes = memorySizeInBytes
        self.apiSocket = apiSocket
    }

    /// Loads `security` ahead when it names credentials; unusable files are refused now, in one line.
    mutating func prepareSecurity() throws(VMMError) {
        guard security.conflict == nil else { return }
        do { preparedSecurity = try TransportSecurity.load(security, sides: [.client]) } catch {
            throw .failed("tcp:// snapshots: \(error)")
        }
    }

    /// The restore a PUT /vm/restore body asks for, with these options around it.
    func request(for body: StandbyRestoreRequest) throws(VMMError) -> RestoreRequest {
        var request = RestoreRequest(snapshot: body.snapshot)
        if let memory = body.memory {
            guard let mode = RestoreMode(rawValue: memory) else {
                throw .invalidRequest("memory is \"\(memory)\"; expected \(RestoreMode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            request.memory = mode
        }
        request.verify = body.verify ?? false
        request.apiSocket = apiSocket
        request.consoleLog = consoleLog
        request.security = security
        request.preparedSecurity = preparedSecurity
        request.reconnectTimeoutSeconds = reconnectTimeoutSeconds
        do {
            // The request's own devices where it names them, else the standby's.
            let asked = try DeviceOverrides(parsingDisks: body.disks ?? [], networks: body.nets ?? [], vsock: body.vsock)
            request.overrides = DeviceOverrides(
                disks: body.disks == nil ? devices.disks : asked.disks, networks: body.nets == nil ? devices.networks : asked.networks,
                vsock: asked.vsock ?? devices.vsock)
        } catch { throw .invalidRequest(error.description) }
        if RestoreSource.isObjectStore(body.snapshot) {
            guard let objectStore else { throw .invalidRequest("\(body.snapshot): this standby VMM has no object store configured") }
            request.objectStore = try objectStore(body.snapshot)
        }
        return request
    }
}
