import Foundation

/// Runs `engram` to completion (no interaction) and returns its status and output.
public func runEngram(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 60) throws -> (status: Int32, output: String, errors: String) {
    let process = try GuestProcess.engram(arguments, environment: environment)
    let status = try process.waitForExit(timeout: timeout)
    return (status, process.consoleText, process.errorText)
}
