/// What a VNC server (or one of its viewers) has sent, for benches and logs.
package struct VNCStatistics: Sendable, Equatable {
    /// Viewers that connected (including those that failed the handshake).
    package var connections = 0
    /// FramebufferUpdate messages sent.
    package var updates = 0
    /// Rectangles in those updates.
    package var rectangles = 0
    /// Bytes written to viewers, handshakes included.
    package var bytesSent = 0

    package init(connections: Int = 0, updates: Int = 0, rectangles: Int = 0, bytesSent: Int = 0) {
        self.connections = connections
        self.updates = updates
        self.rectangles = rectangles
        self.bytesSent = bytesSent
    }

    mutating func add(_ other: VNCStatistics) {
        connections += other.connections
        updates += other.updates
        rectangles += other.rectangles
        bytesSent += other.bytesSent
    }
}
