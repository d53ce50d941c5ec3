import ArgumentParser
import VMM

/// `engram resume-update STATE_PATH` (internal): the new process of a live update. Maps the
/// inherited guest memory, rebuilds the machine from the handed-over state, takes over the
/// control socket and console, and resumes the guest. If it cannot, it leaves a full snapshot
/// at STATE_PATH for `engram restore` and exits 1.
struct ResumeUpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume-update", abstract: "Continue a VM handed over by a live update (run by `engram update`, not by people).",
        shouldDisplay: false)

    @Argument(help: "The handoff file the previous VMM wrote (exec mode).") var statePath: String?
    @Option(help: "Transfer mode: the socket to the running VMM, which hands the guest over on it.") var transferDescriptor: Int32?
    @Option(help: "CLOCK_MONOTONIC nanoseconds when the previous VMM called exec.") var execStarted: UInt64?
    @Option(help: "The child holding the previous image's address space, ended once the guest runs.") var teardownHolder: Int32?

    func validate() throws {
        guard (statePath == nil) != (transferDescriptor == nil) else { throw ValidationError("give STATE_PATH or --transfer-descriptor") }
    }

    func run() throws {
        try runToEnd { () throws(VMMError) in
            try SystemCallFilters.apply(.asParent)
            if let transferDescriptor { return try UpdateTransferTarget.run(descriptor: transferDescriptor) }
            return try UpdateResumption.run(statePath: statePath ?? "", execStarted: execStarted, teardownHolder: teardownHolder)
        }
    }
}
