import ArgumentParser
import ControlAPI
import VMM

/// `engram fork SOCKET --count N`: forks a running VM through its control API (PUT /vm/fork).
struct ForkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fork",
        abstract: "Fork a running VM into children that share its memory copy-on-write.",
        discussion: """
            Each child is its own Engram process with its own control socket (PREFIX-N.sock) and console \
            log (PREFIX-N.console; type into it with PUT /vm/keyboard). Children need their own writable disks \
            and taps: --child-disk N:PATH[,readonly], --child-net N:tap=NAME, --child-vsock N:CID,PATH. \
            Prints the answer (docs/API.md, PUT /vm/fork).
            """)

    @Argument(help: "The VM's control socket.") var socket: String
    @Option(help: "How many children.") var count: Int?
    @Option(help: "Instead of forking: start N children now, each mapping the memory and making its VM, to wait for the next fork (PUT /vm/fork/reserve).")
    var reserve: Int?
    @Option(help: "Where the children's sockets and console logs go (default: SOCKET without .sock, then -child).") var apiSocketPrefix: String?
    @Option(help: "Child N's disk (repeat, in order): N:PATH[,readonly][,id=NAME].") var childDisk: [String] = []
    @Option(help: "Child N's tap (repeat, in order): N:tap=NAME or N:fd=FD.") var childNet: [String] = []
    @Option(help: "Child N's vsock: N:CID,PATH.") var childVsock: [String] = []
    @Flag(help: "End the children that started if any other failed.") var endOnFailure = false
    @Option(help: "Also write the frozen base as a full snapshot at PATH (a new file): the parent's and each child's next diff builds on it, holding only their own pages.")
    var baseSnapshot: String?

    func run() throws {
        if let reserve {
            guard count == nil else { throw ValidationError("--reserve and --count: give one (reserve first, then fork)") }
            APICall.printAnswer(try APICall.send(socket: socket, route: .forkReserve, json: ForkReserveRequest(count: reserve)))
            return
        }
        guard let count else { throw ValidationError("--count N: how many children (or --reserve N to start them ahead)") }
        var children = [ForkChildDevices](repeating: ForkChildDevices(), count: max(count, 0))
        func split(_ text: String, _ option: String) throws -> (Int, String) {
            guard let colon = text.firstIndex(of: ":"), let index = Int(text[..<colon]), (0..<count).contains(index) else {
                throw ValidationError("--\(option) \(text): expected N:VALUE with N a child from 0 to \(count - 1)")
            }
            return (index, String(text[text.index(after: colon)...]))
        }
        for text in childDisk {
            let (index, value) = try split(text, "child-disk")
            children[index].disks = (children[index].disks ?? []) + [value]
        }
        for text in childNet {
            let (index, value) = try split(text, "child-net")
            children[index].nets = (children[index].nets ?? []) + [value]
        }
        for text in childVsock {
            let (index, value) = try split(text, "child-vsock")
            children[index].vsock = value
        }
        let request = ForkRequest(
            count: count, apiSocketPrefix: apiSocketPrefix.map(PathName.absolute),
            children: children.contains { $0 != ForkChildDevices() } ? children : nil, onFailure: endOnFailure ? "end" : nil,
            baseSnapshot: baseSnapshot.map(PathName.absolute))
        APICall.printAnswer(try APICall.send(socket: socket, route: .fork, json: request))
    }
}

/// `engram fork-child --descriptor N` (internal): a fork's child, started by the forking VMM.
struct ForkChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fork-child", abstract: "Run a fork's child (started by a forking VMM, not by people).", shouldDisplay: false)

    @Option(help: "The socket to the forking VMM.") var descriptor: Int32

    func run() throws {
        try runToEnd { () throws(VMMError) in
            try SystemCallFilters.apply(.asParent)
            return try ForkChild.run(descriptor: descriptor)
        }
    }
}
