import Foundation
@testable import Machine
@testable import Migration
import Testing
import TestSupport

/// The checks a VMM makes before it execs a binary in a live update: every bad binary is
/// refused with a message naming it and what was wrong.
@Suite struct BinaryCheckTests {
    let directory = TemporaryDirectory()

    /// A shell script at a fresh path, executable unless `mode` says otherwise.
    func script(_ body: String, mode: Int = 0o700) throws -> String {
        let path = directory.path("engram-\(UUID().uuidString.prefix(6))")
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    func refusal(_ path: String, timeoutMilliseconds: Int32 = 5000) -> String {
        do {
            _ = try BinaryCheck.check(path, timeoutMilliseconds: timeoutMilliseconds)
            return "accepted"
        } catch {
            return error.description
        }
    }

    @Test func aBinaryThatSpeaksThisStateIsAccepted() throws {
        let good = EngramBinaryInfo(version: "9.9.9").json()
        let info = try BinaryCheck.check(try script("[ \"$1 $2\" = 'version --json' ] && echo '\(good)'"))
        #expect(info.version == "9.9.9")
        #expect(info.machineStateVersion == MachineStateRecord.currentVersion)
        #expect(info.readsDevices)
        // A binary from before devices' host sides were kept answers without the features: it gets the disks alone.
        let older = #"{"version":"0.1.0","machine_state_version":\#(MachineStateRecord.currentVersion),"update_handoff_version":1}"#
        #expect(try BinaryCheck.check(try script("echo '\(older)'")).readsDevices == false)
    }

    @Test func missingRelativeAndNonExecutableBinariesAreRefused() throws {
        #expect(refusal(directory.path("nothing-here")).hasSuffix("nothing-here: it does not exist"))
        #expect(refusal("engram").contains("must be an absolute path"))
        #expect(refusal(directory.url.path).contains("is not a regular file"))
        #expect(refusal(try script("exit 0", mode: 0o600)).contains("it is not executable (mode 600)"))
    }

    @Test func binariesThatDoNotAnswerTheVersionQueryAreRefused() throws {
        #expect(refusal(try script("echo 'bad option' >&2; exit 3")).contains("version --json` exited with status 3: bad option"))
        #expect(refusal(try script("echo hello")).contains("did not answer with an Engram version"))
        #expect(refusal(try script("exec sleep 5"), timeoutMilliseconds: 200).contains("did not answer within 200 ms"))
        let other = EngramBinaryInfo(version: "2.0", machineStateVersion: 99).json()
        #expect(refusal(try script("echo '\(other)'")).contains(
            "it reads machine state version 99; this VM's state is version \(MachineStateRecord.currentVersion)"))
        let handoff = EngramBinaryInfo(version: "2.0", updateHandoffVersion: 7).json()
        #expect(refusal(try script("echo '\(handoff)'")).contains("it reads update handoff version 7"))
    }
}
