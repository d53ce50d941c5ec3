import Devices
import Display
import FoundationEssentials
import Glibc
import LinuxSystem
import SystemPackage

/// A VNC viewer's side of RFB (RFC 6143), as Engram's server reads it: the input is everything a
/// viewer sends (protocol version, security type, ClientInit, then client messages), written on
/// a loopback connection to a server showing a 64×64 display file; the viewer then stops sending
/// and reads every reply until the server, having read all of it, closes the connection.
enum RFBInput {
    static let server: VNCServer = {
        do {
            let geometry = try FramebufferGeometry.make(width: 64, height: 64).get()
            let header = FramebufferHeader(geometry: geometry, guestAddress: 0xFD00_0000)
            let path = "/dev/shm/engram-fuzz-display-\(getpid())"
            let file = try FileDescriptor.open(FilePath(path), .readWrite, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
            try file.closeAfter {
                _ = try file.writeAll(header.bytes + (0..<geometry.pixelAreaBytes).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            }
            let server = try VNCServer(view: try FramebufferView(path: path), host: "127.0.0.1", port: 0, log: { _ in }, ioTimeoutMilliseconds: 2000)
            try? FileManager.default.removeItem(atPath: path)
            try server.start()
            return server
        } catch {
            fatalError("cannot start the fuzz target's VNC server: \(error)")
        }
    }()

    static func run(_ bytes: [UInt8]) { _ = exchange(bytes) }

    /// Sends `bytes` as a viewer; how many bytes the server answered with.
    static func exchange(_ bytes: [UInt8]) -> Int {
        guard let viewer = try? StreamSocket.connect(to: Endpoint(host: "127.0.0.1", port: server.boundPort), timeoutMilliseconds: 2000) else { return 0 }
        viewer.setReceiveTimeout(milliseconds: 5000)
        // The server reads and answers as the bytes arrive; a reader keeps its replies from filling the socket.
        if (try? viewer.send(bytes)) != nil { viewer.shutdownSending() }
        var reply = [UInt8](repeating: 0, count: 64 << 10)
        var received = 0
        while let count = try? viewer.receive(into: &reply, at: 0, count: reply.count) { received += count }
        viewer.shutdown()
        return received
    }
}
