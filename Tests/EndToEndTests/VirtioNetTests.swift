import Foundation
import Testing
import TestSupport

/// virtio-net on taps in a namespace of the test's own: the host pings the guest and gets its UDP
/// echoes, guests on one bridge reach each other, hostile frames and floods hurt nothing, and a
/// restored guest on another tap announces itself and answers. The same driver answers the
/// same peer under QEMU's virtio-net.
@Suite(.enabled(if: TestKernel.available && TapNetwork.available, "needs /dev/kvm, the test kernel, root and /dev/net/tun"), .serialized)
struct VirtioNetTests {
    let directory = TemporaryDirectory()
    static let echoPort = 7777

    /// Boots the test kernel inside `network`'s namespace on tap `tap`, at guest address `address`.
    private func boot(_ network: TapNetwork, tap: Int = 0, address: Int = 0, mac: String? = nil, extra: [String] = []) throws -> GuestProcess {
        let process = try network.spawn(ProjectPaths.engram, [
            "run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--cpus", "1",
            "--cmdline", "ip=\(network.guestAddress(address))/24 udp_echo=\(Self.echoPort)",
            "--net", "tap=\(network.taps[tap])" + (mac.map { ",mac=\($0)" } ?? ""),
        ] + extra)
        _ = try process.waitForLine(containing: "READY")
        return process
    }

    /// The `network` object of device `name` in GET /vm/devices.
    private func networkInfo(_ socket: String, _ name: String = "net0") throws -> [String: Any] {
        let result = try runEngram(["ctl", socket, "devices"])
        #expect(result.status == 0, "\(result.errors)")
        let body = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let devices = body?["devices"] as? [[String: Any]] ?? []
        return try #require(devices.first { $0["name"] as? String == name }?["network"] as? [String: Any], "\(result.output)")
    }

    private func field(_ key: String, _ line: String) -> Int { Int(TestKernel.field(key, in: line) ?? "") ?? -1 }

    @Test func theHostPingsTheGuestAndGetsItsUDPEchoes() throws {
        let network = try TapNetwork()
        let socket = directory.path("vm.sock")
        let guest = try boot(network, mac: "52:54:00:12:34:56", extra: ["--api-socket", socket])
        defer { guest.stop() }
        let listing = try guest.command("net", expect: "NET dev=0")
        #expect(TestKernel.field("mac", in: listing) == "52:54:00:12:34:56")
        #expect(TestKernel.field("link", in: listing) == "up" && TestKernel.field("status", in: listing) == "ok", "\(listing)")
        let address = network.guestAddress(0)
        #expect(try network.probeResult(["ping", address, "5"]) == "PING sent=5 received=5")
        #expect(try network.probeResult(["udp", address, "\(Self.echoPort)", "3", "1", "64", "1472"]) == "UDP sent=9 received=9")

        // The guest's own traffic out: ping the host, and round trips through a host echo service.
        let echo = try network.probe(["echo-server", network.hostAddress, "9999", "60"])
        defer { echo.stop() }
        _ = try echo.waitForLine(containing: "ECHO ready")
        let udp = try guest.command("net udp 0 \(network.hostAddress) 9999 1000 20 5", expect: "NET UDP")
        #expect(field("received", udp) == 20 && field("mismatched", udp) == 0, "\(udp)")
        #expect(field("received", try guest.command("net ping 0 \(network.hostAddress) 3", expect: "NET PING")) == 3)

        let stats = try guest.command("net stats 0", expect: "NET STATS")
        #expect(field("udp_echo", stats) >= 9 && field("icmp_echo", stats) >= 5 && field("bad_csum", stats) == 0, "\(stats)")
        let info = try networkInfo(socket)
        #expect(info["tap"] as? String == network.taps[0] && info["mac"] as? String == "52:54:00:12:34:56")
        #expect((info["rx_packets"] as? Int ?? 0) >= 34 && (info["tx_packets"] as? Int ?? 0) >= 34, "\(info)")
        #expect(info["rx_dropped"] as? Int == 0 && info["tx_dropped"] as? Int == 0 && info["errors"] as? Int == 0, "\(info)")

        // The same counters for a Prometheus scraper, read with curl.
        let curl = try GuestProcess(executable: "/usr/bin/curl", arguments: ["-sf", "--unix-socket", socket, "http://localhost/metrics"])
        #expect(try curl.waitForExit() == 0)
        let metric = curl.consoleText.split(separator: "\n").first { $0.hasPrefix("engram_net_rx_packets_total{device=\"net0\",tap=\"\(network.taps[0])\"") }
        #expect(metric.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0 >= 34, "\(curl.consoleText)")
    }

    @Test func oneGuestWithTwoInterfacesAnswersOnEach() throws {
        let network = try TapNetwork(taps: 2)
        let socket = directory.path("vm.sock")
        let guest = try network.spawn(ProjectPaths.engram, [
            "run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--cpus", "1", "--api-socket", socket,
            "--cmdline", "ip=\(network.guestAddress(0))/24,\(network.guestAddress(1))/24 udp_echo=\(Self.echoPort)",
            "--net", "tap=\(network.taps[0]),mac=02:00:00:00:01:01", "--net", "tap=\(network.taps[1]),mac=02:00:00:00:01:02",
        ])
        defer { guest.stop() }
        _ = try guest.waitForLine(containing: "READY")
        #expect(try guest.command("net", expect: "NET devices=").hasSuffix("devices=2"))
        for index in 0..<2 {
            let address = network.guestAddress(index)
            #expect(try network.probeResult(["udp", address, "\(Self.echoPort)", "3", "64"]) == "UDP sent=3 received=3", "\(address)")
            let info = try networkInfo(socket, "net\(index)")
            #expect(info["tap"] as? String == network.taps[index] && info["mac"] as? String == "02:00:00:00:01:0\(index + 1)")
            #expect((info["rx_packets"] as? Int ?? 0) >= 3 && (info["tx_packets"] as? Int ?? 0) >= 3, "\(info)")
        }
    }

    @Test func twoGuestsOnOneBridgeReachEachOther() throws {
        let network = try TapNetwork(taps: 2)
        let first = try boot(network, tap: 0, address: 0)
        defer { first.stop() }
        let second = try boot(network, tap: 1, address: 1)
        defer { second.stop() }
        let ping = try first.command("net ping 0 \(network.guestAddress(1)) 3", expect: "NET PING")
        #expect(field("received", ping) == 3, "\(ping)")
        let udp = try second.command("net udp 0 \(network.guestAddress(0)) \(Self.echoPort) 1472 10 9", expect: "NET UDP")
        #expect(field("received", udp) == 10 && field("mismatched", udp) == 0, "\(udp)")
    }

    /// Frames a hostile driver sends are dropped and counted (or break only its own queue), and a
    /// flood either way leaves the console, the control API and the host responsive.
    @Test func hostileFramesAndFloodsAreDroppedNotFatal() throws {
        let network = try TapNetwork()
        let socket = directory.path("vm.sock")
        let guest = try boot(network, extra: ["--api-socket", socket])
        defer { guest.stop() }
        let start = guest.consoleText.utf8.count
        _ = try guest.command("virtio", expect: "VIRTIO devices=")
        let listing = String(guest.consoleText.utf8.dropFirst(start)) ?? ""
        let device = try #require(listing.split(separator: "\n").first { $0.contains("type=net") }.flatMap { TestKernel.field("dev", in: String($0)) })
        for kind in ["net-short-header", "net-bad-offsets", "net-oversize", "net-outside-ram", "chain-loop", "len-overflow"] {
            let line = try guest.command("virtio evil \(device) \(kind)", expect: "EVIL")
            #expect(!line.hasPrefix("ERROR"), "\(kind): \(line)")
        }
        // Each kind ran on a freshly reset device: it works again.
        _ = try guest.command("net opt 0 event_idx 1", expect: "NET OPT")
        let address = network.guestAddress(0)
        #expect(try network.probeResult(["udp", address, "\(Self.echoPort)", "3", "64"]) == "UDP sent=3 received=3")
        let info = try networkInfo(socket)
        #expect((info["tx_dropped"] as? Int ?? 0) >= 2, "the short header and the oversized frame are counted: \(info)")

        // A flood from the host at the echo service, and one from the guest at the host.
        let flood = try network.probe(["flood", address, "\(Self.echoPort)", "512", "5"])
        defer { flood.stop() }
        for _ in 0..<5 {
            #expect(try TestKernel.ticks(guest) >= 0)
            #expect(try runEngram(["ctl", socket, "info"]).status == 0)
        }
        let sent = try guest.command("net flood 0 \(network.hostAddress) 9 1000 20000", expect: "NET FLOOD", timeout: 120)
        #expect(field("sent", sent) == 20000, "\(sent)")
        #expect(try flood.waitForExit(timeout: 60) == 0)
        #expect(try network.probeResult(["udp", address, "\(Self.echoPort)", "3", "64"]) == "UDP sent=3 received=3")
        #expect((try networkInfo(socket)["tx_packets"] as? Int ?? 0) >= 20000)
    }

    /// A clone restored onto another tap (Firecracker's network override) announces itself there
    /// at once and answers; a restore that would change the MAC is refused.
    @Test func aRestoreOnAnotherTapAnnouncesItselfAndAnswers() throws {
        let network = try TapNetwork(taps: 2)
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let source = try boot(network, tap: 0, extra: ["--api-socket", socket])
        defer { source.stop() }
        let address = network.guestAddress(0)
        #expect(try network.probeResult(["udp", address, "\(Self.echoPort)", "2", "64"]) == "UDP sent=2 received=2")
        let taken = try runEngram(["snapshot", socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")
        source.kill()
        _ = try source.waitForExit()

        let refused = try network.spawn(ProjectPaths.engram, ["restore", snapshot, "--net", "tap=\(network.taps[1]),mac=02:00:00:00:00:09"])
        #expect(try refused.waitForExit() != 0)
        #expect(refused.errorText.contains("--net mac=02:00:00:00:00:09 for net0"), "\(refused.errorText)")

        for mode in ["map", "lazy"] {
            let announcements = try network.probe(["garp", network.taps[1], address, "8"])
            defer { announcements.stop() }
            _ = try announcements.waitForLine(containing: "GARP ready")
            let restored = try network.spawn(ProjectPaths.engram, ["restore", snapshot, "--memory", mode, "--net", "tap=\(network.taps[1])"])
            defer { restored.stop() }
            // Datagrams sent before the restored VMM has the tap are lost, as on a cable not yet plugged in.
            #expect(try restored.command("net", expect: "NET dev=0").contains("link=up"))
            let echoes = try network.probeResult(["udp", address, "\(Self.echoPort)", "3", "64", "1472"])
            #expect(echoes == "UDP sent=6 received=6", "\(mode): \(echoes)")
            _ = try announcements.waitForExit(timeout: 30)
            #expect(field("count", announcements.consoleText.split(separator: "\n").last.map(String.init) ?? "") >= 1, "\(mode): \(announcements.consoleText)")
        }
    }

    /// A live update keeps the tap queue open across exec: a 1 kHz stream of numbered datagrams
    /// through the guest's echo service loses none and duplicates none (what arrives during the
    /// downtime waits in the tap's queue), and no announcement is needed.
    @Test func aLiveUpdateUnderA1kHzStreamLosesNoDatagram() throws {
        let network = try TapNetwork()
        let socket = directory.path("vm.sock")
        let guest = try boot(network, extra: ["--api-socket", socket])
        defer { guest.stop() }
        let address = network.guestAddress(0)
        let stream = try network.probe(["stream", address, "\(Self.echoPort)", "1000", "4"])
        defer { stream.stop() }
        _ = try stream.waitForLine(containing: "STREAM ready")
        Thread.sleep(forTimeInterval: 1)
        let update = try runEngram(["update", socket])
        #expect(update.status == 0, "\(update.errors)")
        let result = try stream.waitForLine(containing: "STREAM sent=", timeout: 60)
        let after = try network.probeResult(["udp", address, "\(Self.echoPort)", "2", "1472"])
        let stats = try guest.command("net stats 0", expect: "NET STATS")
        let listing = try guest.command("virtio", expect: "VIRTIO devices=")
        let devices = try runEngram(["ctl", socket, "devices"]).output
        let context = "\(stats); \(listing); \(guest.consoleText.suffix(400)); \(devices); update: \(update.output) \(update.errors); VMM: \(guest.errorText.suffix(800))"
        #expect(field("lost", result) == 0 && field("duplicated", result) == 0 && field("sent", result) == 4000, "\(result); \(context)")
        #expect(after == "UDP sent=2 received=2", "\(after); \(context)")
        #expect(try networkInfo(socket)["tap"] as? String == network.taps[0])
    }

    /// Every migration mode carries the device; the destination attaches its own tap, where the
    /// guest announces itself at once and answers, and `engram migrate` ends with the figures.
    @Test(arguments: ["precopy", "postcopy", "shared"])
    func aMigratedGuestAnnouncesItselfOnTheDestinationTap(mode: String) throws {
        let pair = try MigrationPair(directory: directory)
        defer { pair.shutDown() }
        let sourceNetwork = try TapNetwork(in: pair.sourceNamespace, subnet: "192.168.77")
        let destinationNetwork = try TapNetwork(in: pair.destinationNamespace, subnet: "192.168.77")
        let address = sourceNetwork.guestAddress(0)
        let (_, socket) = try pair.source("src", cmdline: "cpus=1 ip=\(address)/24 udp_echo=\(Self.echoPort)",
                                          extra: ["--net", "tap=\(sourceNetwork.taps[0])"]
                                              + (mode == "shared" ? ["--shared-maps", directory.path("shared") + ":ram"] : []))
        #expect(try sourceNetwork.probeResult(["udp", address, "\(Self.echoPort)", "2", "64"]) == "UDP sent=2 received=2")
        let announcements = try destinationNetwork.probe(["garp", destinationNetwork.taps[0], address, "20"])
        defer { announcements.stop() }
        _ = try announcements.waitForLine(containing: "GARP ready")
        let (destination, url) = try pair.receive(extra: ["--net", "tap=\(destinationNetwork.taps[0])"] + (mode == "shared" ? ["--shared-dir", directory.url.path] : []))
        let migration = try pair.migrate(socket, to: url, mode: mode)
        #expect(migration.status == 0, "\(migration.errors)")
        #expect(migration.errors.contains("migrate: completed: total "), "\(migration.errors)")
        #expect(try destination.command("net", expect: "NET dev=0").contains("link=up"))
        let echoes = try destinationNetwork.probeResult(["udp", address, "\(Self.echoPort)", "3", "64", "1472"])
        if echoes != "UDP sent=6 received=6" {
            let stats = try destination.command("net stats 0", expect: "NET STATS")
            let listing = try destination.command("virtio", expect: "VIRTIO devices=")
            let again = try destinationNetwork.probeResult(["udp", address, "\(Self.echoPort)", "2", "64"])
            Issue.record("\(mode): \(echoes); again: \(again); \(stats); \(listing); \(destination.consoleText.suffix(600)); VMM: \(destination.errorText.suffix(800))")
        }
        _ = try announcements.waitForExit(timeout: 40)
        #expect(field("count", announcements.consoleText.split(separator: "\n").last.map(String.init) ?? "") >= 1, "\(announcements.consoleText)")
    }

    @Test func theSameDriverAnswersTheHostUnderQEMU() throws {
        let qemu = try #require(QEMULinuxGuest.qemuExecutable, "qemu-system-x86_64 is part of the test setup")
        let network = try TapNetwork(taps: 2)
        let engram = try boot(network, tap: 0, address: 0)
        defer { engram.stop() }
        let qemuProcess = try network.spawn(qemu, [
            "-M", "microvm,acpi=off", "-accel", "kvm", "-m", "256M", "-smp", "1", "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
            "-kernel", ProjectPaths.testKernel, "-append", "ip=\(network.guestAddress(1))/24 udp_echo=\(Self.echoPort)",
            "-netdev", "tap,id=n0,ifname=\(network.taps[1]),script=no,downscript=no,vhost=off", "-device", "virtio-net-device,netdev=n0",
        ])
        defer { qemuProcess.stop() }
        _ = try qemuProcess.waitForLine(containing: "READY")
        for index in 0..<2 {
            let address = network.guestAddress(index)
            #expect(try network.probeResult(["ping", address, "3"]) == "PING sent=3 received=3", "guest \(index)")
            #expect(try network.probeResult(["udp", address, "\(Self.echoPort)", "2", "1", "1472"]) == "UDP sent=4 received=4", "guest \(index)")
        }
        // Under each VMM the guest reaches the other.
        #expect(field("received", try engram.command("net ping 0 \(network.guestAddress(1)) 2", expect: "NET PING")) == 2)
        #expect(field("received", try qemuProcess.command("net ping 0 \(network.guestAddress(0)) 2", expect: "NET PING")) == 2)
    }

    @Test func badNetOptionsEndTheVMMInOneLineBeforeItStarts() throws {
        for (option, message) in [
            ("tap=", "--net \"tap=\": expected tap=NAME[,mac=MAC] or fd=N[,mac=MAC]"),
            ("tap=x,mac=01:00:5e:00:00:01", "--net \"tap=x,mac=01:00:5e:00:00:01\": expected"),
            ("fd=917", "network tap descriptor 917: is not an open descriptor"),
            ("fd=0", "network tap descriptor 0: is not an open tap device"),
        ] {
            let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M", "--net", option])
            #expect(result.status != 0)
            #expect(result.errors.contains(message), "\(option): \(result.errors)")
        }
    }
}
