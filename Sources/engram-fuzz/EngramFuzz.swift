import FuzzTargets
import Glibc
import SystemPackage

/// Writes `text` to standard error.
func standardError(_ text: String) {
    _ = try? FileDescriptor.standardError.writeAll(text.utf8)
}

/// libFuzzer's entry (built with -sanitize=fuzzer -DFUZZING by scripts/fuzz.sh): runs the
/// target ENGRAM_FUZZ_TARGET names on each input.
#if FUZZING
private let target: FuzzTarget = {
    guard let name = getenv("ENGRAM_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTarget.named(name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        standardError("engram-fuzz: set ENGRAM_FUZZ_TARGET to one of: \(names)\n")
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // SAFETY: libFuzzer hands `size` readable bytes at `data` for the duration of the call.
    let bytes = unsafe data.map { unsafe Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    target.run(bytes)
    return 0
}

/// libFuzzer's driver (libclang_rt.fuzzer), started from the entry point SwiftPM gives an
/// executable target (it renames `main` to MODULE_main so tests can link executables).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("engram_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = unsafe argv
    // SAFETY: the driver reads and may rewrite the argument count and vector it is handed, which live through the call.
    return unsafe runFuzzerDriver(&count, &vector, { data, size in unsafe fuzzOneInput(data, size) })
}
#else
/// Without libFuzzer: `engram-fuzz replay TARGET FILE...` runs inputs (a crash reproduces),
/// `engram-fuzz seeds DIRECTORY [SNAPSHOT]` writes the seed corpus (with SNAPSHOT's machine state).
@main
struct EngramFuzz {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "replay" where arguments.count >= 2:
            guard let target = FuzzTarget.named(arguments[1]) else { return usage() }
            for path in arguments.dropFirst(2) {
                guard let bytes = FuzzFiles.read(path) else {
                    standardError("engram-fuzz: cannot read \(path)\n")
                    exit(1)
                }
                target.run(bytes)
                print("\(target.rawValue): \(path): ok")
            }
        case "seeds" where arguments.count >= 2:
            let state = try arguments.count > 2 ? FuzzFiles.snapshotState(arguments[2]) : nil
            for (target, inputs) in try SeedCorpus.seeds(state: state) {
                for input in inputs { try FuzzFiles.write(input.bytes, to: "\(arguments[1])/\(target.rawValue)/\(input.name)") }
            }
        default:
            usage()
        }
    }

    static func usage() {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        standardError("usage: engram-fuzz replay TARGET FILE... | engram-fuzz seeds DIRECTORY [SNAPSHOT]\ntargets: \(names)\n")
        exit(2)
    }
}
#endif
