import ArgumentParser
import LinuxSystem
import VMM


/// The `engram` command line: one subcommand per file.
@main
struct Engram: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engram",
        abstract: "A KVM virtual machine monitor whose guest memory is a first-class file.",
        subcommands: [
            RunCommand.self, RestoreCommand.self, ServeCommand.self, CtlCommand.self, SnapshotCommand.self, SnapshotMergeCommand.self, UpdateCommand.self,
            VersionCommand.self, ResumeUpdateCommand.self, MemCommand.self, ReceiveCommand.self, MigrateCommand.self, PushCommand.self, DisplayCommand.self, StandbyCommand.self, ForkCommand.self, ForkChildCommand.self, JailCommand.self,
        ]
    )

    /// Runs the chosen subcommand; a `CommandFailure` becomes one line on stderr and exit status 1.
    static func main() {
        DescriptorLimit.raiseToHardLimit()
        JailProbe.answerIfAsked()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            Diagnostics.note(failure.description)
            Self.exit(withError: ExitCode(1))
        } catch {
            Self.exit(withError: error)
        }
    }
}
