import FuzzTargets
import Testing
import TestSupport

/// Every input in Fuzz/corpus (the seeds and what fuzzing kept) and Fuzz/regressions (inputs
/// that once crashed a target, kept after the fix) runs through its target without a crash: the
/// fuzz runs' findings stay fixed. `scripts/fuzz.sh` is where new inputs come from.
/// The fuzz targets that take files share one directory per target (`ChainInput.directory`):
/// suites that run them go one at a time, as libFuzzer runs a target, so one suite's input is
/// not replaced by another's between writing it and reading it back.
@Suite(.serialized) enum FuzzTargetRuns {}

extension FuzzTargetRuns {
@Suite struct FuzzCorpusTests {
    static let root = ProjectPaths.root.appendingPathComponent("Fuzz").path

    @Test(arguments: FuzzTarget.allCases)
    func everyKeptInputRunsWithoutACrash(target: FuzzTarget) throws {
        let inputs = FuzzFiles.files(under: "\(Self.root)/corpus/\(target.rawValue)") + FuzzFiles.files(under: "\(Self.root)/regressions/\(target.rawValue)")
        #expect(!inputs.isEmpty, "Fuzz/corpus/\(target.rawValue) has no seeds (engram-fuzz seeds Fuzz/corpus)")
        for path in inputs {
            let bytes = try #require(FuzzFiles.read(path), "\(path)")
            target.run(bytes)
        }
    }
}
}
