/// Builds the Prometheus text GET /metrics answers: one `# HELP`/`# TYPE` pair per metric, then
/// its samples, every name prefixed `engram_`.
struct MetricsText {
    private var text = ""
    private var declared: Set<String> = []

    /// Every metric the VMM has now.
    static func render(_ control: any VMControl) -> String {
        var metrics = MetricsText()
        metrics.add(machine: control.vmInfo())
        for device in control.devices() { metrics.add(device: device) }
        metrics.add(memory: control.memoryStatistics())
        metrics.add(migration: control.migrationStatus())
        metrics.add(update: control.updateStatus())
        return metrics.text
    }

    /// One sample of `name`, declared the first time it appears.
    mutating func sample(_ name: String, _ type: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
        declare(name, type, help)
        line(name, labels, value)
    }

    /// `# HELP` and `# TYPE` for metric family `name`, once.
    mutating func declare(_ name: String, _ type: String, _ help: String) {
        let full = "engram_" + name
        if declared.insert(full).inserted { text += "# HELP \(full) \(help)\n# TYPE \(full) \(type)\n" }
    }

    /// One sample line (a histogram's `_bucket`, `_sum` and `_count` share their family's declaration).
    mutating func line(_ name: String, _ labels: [(String, String)], _ value: Double) {
        let labelText = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",") + "}"
        text += "engram_\(name)\(labelText) \(Self.number(value))\n"
    }

    /// A label value with backslash, double quote and newline escaped.
    private static func escaped(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }

    private static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    private mutating func add(machine: VMInfo) {
        for state in ["running", "paused", "stopped"] {
            sample("vm_state", "gauge", "1 for the machine's current state", [("state", state)], machine.state == state ? 1 : 0)
        }
        sample("vm_vcpus", "gauge", "vCPUs of the machine", [], Double(machine.vcpus))
        sample("vm_memory_bytes", "gauge", "Guest RAM size", [], Double(machine.memorySizeInBytes))
        sample("vm_uptime_seconds", "gauge", "Seconds since the machine started (or was restored)", [], machine.uptimeSeconds)
    }

    private mutating func add(device: DeviceInfo) {
        let labels = [("device", device.name), ("type", device.type)]
        sample("virtio_broken_queues_total", "counter", "Times the guest's driver broke a queue of the device", labels, Double(device.brokenQueues))
        sample("virtio_needs_reset", "gauge", "1 while the device waits for its driver to reset it", labels, device.needsReset ? 1 : 0)
        if let network = device.network {
            let labels = [("device", device.name), ("tap", network.tap), ("mac", network.mac)]
            sample("net_rx_packets_total", "counter", "Frames handed to the guest", labels, Double(network.rxPackets))
            sample("net_rx_bytes_total", "counter", "Bytes (Ethernet frames) handed to the guest", labels, Double(network.rxBytes))
            sample("net_tx_packets_total", "counter", "Frames the guest sent to the tap", labels, Double(network.txPackets))
            sample("net_tx_bytes_total", "counter", "Bytes (Ethernet frames) the guest sent to the tap", labels, Double(network.txBytes))
            sample("net_rx_dropped_total", "counter", "Frames from the tap no guest buffer could hold", labels, Double(network.rxDropped))
            sample("net_tx_dropped_total", "counter", "Frames from the guest dropped as malformed or refused by the tap", labels, Double(network.txDropped))
            sample("net_errors_total", "counter", "Host-side failures reading or writing the tap", labels, Double(network.errors))
        }
        if let disk = device.disk {
            let labels = [("device", device.name), ("path", disk.path)]
            sample("block_read_bytes_total", "counter", "Bytes the guest read from the disk", labels, Double(disk.readBytes))
            sample("block_written_bytes_total", "counter", "Bytes the guest wrote to the disk", labels, Double(disk.writtenBytes))
            sample("block_flushes_total", "counter", "FLUSH requests served", labels, Double(disk.flushes))
            sample("block_discards_total", "counter", "DISCARD and WRITE_ZEROES requests served", labels, Double(disk.discards))
            sample("block_failed_requests_total", "counter", "Requests answered IOERR or UNSUPP", labels, Double(disk.failedRequests))
        }
        if let vsock = device.vsock {
            let labels = [("device", device.name)]
            sample("vsock_connections_open", "gauge", "Open vsock connections", labels, Double(vsock.connectionsOpen))
            sample("vsock_rx_bytes_total", "counter", "Payload bytes to the guest", labels, Double(vsock.rxBytes))
            sample("vsock_tx_bytes_total", "counter", "Payload bytes from the guest", labels, Double(vsock.txBytes))
            sample("vsock_refused_packets_total", "counter", "Guest packets refused", labels, Double(vsock.refusedPackets))
        }
        if let entropy = device.entropy {
            sample("rng_bytes_total", "counter", "Random bytes handed to the guest", [("device", device.name)], Double(entropy.bytesServed))
        }
    }

    private mutating func add(memory: MemoryStatistics) {
        if let restore = memory.restore {
            sample("restore_milliseconds", "gauge", "From the start of the restore until the vCPUs ran", [("mode", restore.mode)], restore.restoreMilliseconds)
        }
        guard let lazy = memory.lazy else { return }
        sample("lazy_present_pages", "gauge", "Pages of a lazy restore already in guest memory", [], Double(lazy.presentPages))
        sample("lazy_total_pages", "gauge", "Pages a lazy restore fills", [], Double(lazy.totalPages))
        sample("lazy_demand_faults_total", "counter", "Guest touches of missing pages served by the fault handler", [], Double(lazy.demandFaults))
        sample("lazy_background_pages_total", "counter", "Pages installed by the background fill", [], Double(lazy.backgroundPages))
        // The fault latency histogram, cumulative as Prometheus wants it (buckets in microseconds).
        let family = "lazy_fault_latency_microseconds"
        declare(family, "histogram", "Time to serve a demand fault")
        var cumulative: UInt64 = 0
        for bucket in lazy.faultLatency.buckets {
            cumulative += bucket.count
            line(family + "_bucket", [("le", "\(bucket.upToUs)")], Double(cumulative))
        }
        line(family + "_bucket", [("le", "+Inf")], Double(lazy.faultLatency.count))
        line(family + "_sum", [], lazy.faultLatency.meanUs * Double(lazy.faultLatency.count))
        line(family + "_count", [], Double(lazy.faultLatency.count))
    }

    private mutating func add(migration: MigrationStatus) {
        guard migration.mode != nil else { return }
        let labels = [("mode", migration.mode ?? ""), ("status", migration.status)]
        sample("migration_passes", "gauge", "Memory passes of the current or last migration", labels, Double(migration.passes))
        sample("migration_bytes_sent", "gauge", "Bytes the current or last migration sent", labels, Double(migration.bytesSent))
        if let downtime = migration.downtimeMs { sample("migration_downtime_milliseconds", "gauge", "The last migration's downtime", labels, downtime) }
        if let total = migration.totalMs { sample("migration_total_milliseconds", "gauge", "The last migration's total time", labels, total) }
    }

    private mutating func add(update: UpdateStatus) {
        sample("updates_completed_total", "counter", "Live updates this VM went through", [], Double(update.updatesCompleted))
        if let downtime = update.last?.downtimeMilliseconds {
            sample("update_downtime_milliseconds", "gauge", "The last live update's downtime", [], downtime)
        }
    }
}
