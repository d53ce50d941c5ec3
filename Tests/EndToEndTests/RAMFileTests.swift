import Foundation
import Testing
import TestSupport

/// Guest RAM in files another process can read while the guest runs.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct RAMFileTests {
    let directory = TemporaryDirectory()

    @Test func tagWrittenByTheGuestIsInTheRAMFileWhileItRuns() throws {
        let path = directory.path("guest.ram")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: path)).truncate(atOffset: 256 << 20)
        let (process, _) = try TestKernel.boot(extra: ["--ram-file", path])
        defer { process.stop() }
        let (tag, address) = try TestKernel.writeTag(process)
        #expect(address < 256 << 20)
        #expect(process.isRunning)
        #expect(try Data.read(path, offset: address, count: tag.utf8.count) == Data(tag.utf8))
        #expect(process.errorText.contains("region ram: 256 MiB, file \(path)"))
    }

    @Test func sharedMapsCreatesAPrivateFilePerRegion() throws {
        let prefix = directory.path("vm")
        let (process, _) = try TestKernel.boot(extra: ["--shared-maps", "\(prefix):ram"])
        defer { process.stop() }
        let path = prefix + ".ram"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        #expect(attributes[.size] as? Int == 256 << 20)
        let (tag, address) = try TestKernel.writeTag(process)
        #expect(try Data.read(path, offset: address, count: tag.utf8.count) == Data(tag.utf8))
    }

    @Test func sharedMapsRefusesToOverwriteWithoutForce() throws {
        let prefix = directory.path("taken")
        _ = FileManager.default.createFile(atPath: prefix + ".ram", contents: Data("keep me".utf8))
        let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--shared-maps", "\(prefix):ram"])
        #expect(result.status != 0)
        #expect(result.errors.contains("\(prefix).ram already exists; pass --force"))
        #expect(try String(contentsOfFile: prefix + ".ram", encoding: .utf8) == "keep me")
    }

    @Test func wrongSizedRAMFileIsRefusedBeforeTheVMExists() throws {
        let path = directory.path("small.ram")
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20))
        let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--ram-file", path])
        #expect(result.status != 0)
        #expect(result.errors.contains("RAM file \(path) is 1048576 bytes; expected exactly 268435456 bytes"))
        #expect(result.errors.split(separator: "\n").count == 1)
        #expect(!result.output.contains("READY"))
    }

    @Test func missingRAMFileIsRefused() throws {
        let path = directory.path("absent.ram")
        let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--ram-file", path])
        #expect(result.status != 0)
        #expect(result.errors.contains("RAM file \(path) does not exist"))
        #expect(result.errors.split(separator: "\n").count == 1)
    }

    @Test func readOnlyRAMFileIsRefused() throws {
        let path = directory.path("ro.ram")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: path)).truncate(atOffset: 256 << 20)
        let chattr = URL(fileURLWithPath: "/usr/bin/chattr")
        if getuid() == 0 {  // root ignores file modes: an immutable file is read-only even for root
            try Process.run(chattr, arguments: ["+i", path]).waitUntilExit()
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: path)
        }
        defer { if getuid() == 0 { _ = try? Process.run(chattr, arguments: ["-i", path]).waitUntilExit() } }
        let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--ram-file", path])
        #expect(result.status != 0)
        #expect(result.errors.contains("RAM file \(path) cannot be opened read-write"))
        #expect(result.errors.split(separator: "\n").count == 1)
    }
}
