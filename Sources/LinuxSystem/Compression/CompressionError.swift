/// A compression library (zlib) refused a call: which one, and its return code.
package struct CompressionError: Error, Sendable, Equatable, CustomStringConvertible {
    package let call: String
    package let code: Int32

    package init(call: String, code: Int32) {
        self.call = call
        self.code = code
    }

    package var description: String { "zlib \(call) failed with code \(code)" }
}
