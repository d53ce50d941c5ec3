import Glibc
import Testing
@testable import LinuxSystem

/// Pipes, eventfds, poll and epoll.
@Suite struct DescriptorTests {
    @Test func pipeEndsAreCloseOnExec() throws {
        let pipe = try Pipe()
        #expect(ProcessImage.isCloseOnExec(pipe.readEnd.rawValue) == true)
        #expect(ProcessImage.isCloseOnExec(pipe.writeEnd.rawValue) == true)
        try pipe.writeEnd.writeAll([42], subject: "pipe")
        #expect(Poll.isReadable(pipe.readEnd.rawValue, milliseconds: 1000))
    }

    @Test func eventNotifierStaysSignalledUntilDrained() throws {
        let event = try EventNotifier()
        #expect(!event.isSignaled)
        event.signal()
        event.signal()
        #expect(event.isSignaled)
        event.wait()
        event.drain()
        #expect(!event.isSignaled)
    }

    @Test func epollReportsTheReadyDescriptorsToken() throws {
        let epoll = try Epoll()
        let quiet = try EventNotifier()
        let loud = try EventNotifier()
        try epoll.add(quiet.rawValue, interest: .readable, token: 1)
        try epoll.add(loud.rawValue, interest: .readable, token: 2)
        var events = Epoll.Events(capacity: 8)
        try epoll.wait(into: &events, milliseconds: 0)
        #expect(events.count == 0)
        loud.signal()
        try epoll.wait(into: &events, milliseconds: 1000)
        #expect(events.count == 1)
        #expect(events[0] == Epoll.Event(token: 2, readable: true, writable: false, failed: false))
        epoll.remove(loud.rawValue)
        try epoll.wait(into: &events, milliseconds: 0)
        #expect(events.count == 0)
    }

    @Test func aBadDescriptorIsNamedInTheError() throws {
        let epoll = try Epoll()
        let error = #expect(throws: SystemError.self) { try epoll.add(-1, interest: .readable, token: 0) }
        #expect(error?.errno == .badFileDescriptor)
    }
}
