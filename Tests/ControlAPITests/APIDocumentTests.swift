import ControlAPI
import Foundation
import Testing

/// docs/openapi.yaml and docs/API.md describe exactly the routes the server has.
@Suite struct APIDocumentTests {
    private static let docs = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs")

    private var served: Set<String> {
        Set(Router(control: FakeVMControl(), version: "1").routes.map { "\($0.method) \($0.path)" })
    }

    @Test func openAPIListsExactlyTheServedRoutes() throws {
        let text = try String(contentsOf: Self.docs.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        var documented = Set<String>()
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:"; path = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "patch", "delete"].contains(key) { documented.insert("\(key.uppercased()) \(path)") }
            }
        }
        #expect(documented == served)
    }

    @Test func apiGuideMentionsEveryRoute() throws {
        let text = try String(contentsOf: Self.docs.appendingPathComponent("API.md"), encoding: .utf8)
        for route in served.sorted() {
            #expect(text.contains(route), "docs/API.md does not mention \(route)")
        }
    }
}
