import ArgumentParser

/// `engram ctl SOCKET ...`: calls a running VM's control API. (Placeholder until ControlAPI lands.)
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ctl", abstract: "Call a running VM's control API.")
}
