import FoundationEssentials

/// Re-indents a JSON answer for people (`engram ctl`), keeping the text of every value exactly.
///
/// Works on the text, not on decoded values, so 64-bit integers and key order survive as sent.
package enum JSONIndenter {
    /// `json` indented by two spaces per level, or nil when it is not valid JSON.
    package static func indent(_ json: [UInt8]) -> String? {
        guard (try? JSONCoding.makeDecoder().decode(WellFormed.self, from: Data(json))) != nil else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(json.count * 2)
        var depth = 0
        var inString = false, escaped = false
        var index = 0
        func newline() {
            output.append(UInt8(ascii: "\n"))
            output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
        }
        while index < json.count {
            let byte = json[index]
            index += 1
            if inString {
                output.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "\""):
                inString = true
                output.append(byte)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                while index < json.count, [0x20, 0x09, 0x0a, 0x0d].contains(json[index]) { index += 1 }
                if index < json.count, json[index] == close {
                    output.append(contentsOf: [byte, close])  // an empty container stays on one line
                    index += 1
                } else {
                    output.append(byte)
                    depth += 1
                    newline()
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                newline()
                output.append(byte)
            case UInt8(ascii: ","):
                output.append(byte)
                newline()
            case UInt8(ascii: ":"):
                output.append(contentsOf: [byte, UInt8(ascii: " ")])
            default:
                output.append(byte)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes nothing: JSONDecoder parses the whole text before calling it, so success means well-formed JSON.
    private struct WellFormed: Decodable {
        init(from decoder: any Decoder) throws {}
    }
}
