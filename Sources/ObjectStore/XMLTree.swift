/// A small XML reader for the few documents S3 sends: error bodies, ListObjectsV2 results and
/// the multipart upload replies.
///
/// Hand-written so the client does not depend on libxml2 (FoundationXML needs it at run time on
/// Linux). It reads elements, text, CDATA and the five named and numeric character references;
/// it skips attributes, comments and processing instructions, and refuses DTDs, so a body can
/// never make it expand entities. Every byte access is bounds-checked, and nesting is limited.
struct XMLTree: Sendable, Equatable {
    /// The element's local name (any "prefix:" dropped).
    let name: String
    let children: [XMLTree]
    /// The element's own text, entities decoded, not trimmed (keys may end in spaces).
    let text: String

    /// The first child named `name`.
    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// Every child named `name`, in document order.
    func children(named name: String) -> [XMLTree] { children.filter { $0.name == name } }

    /// The text of the first child named `name`.
    func text(of name: String) -> String? { child(name)?.text }

    /// Parses a whole document, its root element returned.
    static func parse(_ bytes: [UInt8]) throws(ObjectStoreError) -> XMLTree {
        var reader = Reader(bytes: bytes)
        try reader.skipMisc()
        guard reader.peek() == UInt8(ascii: "<") else { throw .malformed("XML: no root element") }
        let root = try reader.element(depth: 0)
        try reader.skipMisc()
        guard reader.atEnd else { throw .malformed("XML: text after the root element") }
        return root
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        static let maximumDepth = 32

        init(bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index >= bytes.count }

        func peek(_ offset: Int = 0) -> UInt8? {
            let at = index + offset
            return at >= 0 && at < bytes.count ? bytes[at] : nil
        }

        func starts(with text: String) -> Bool {
            var offset = 0
            for byte in text.utf8 {
                guard peek(offset) == byte else { return false }
                offset += 1
            }
            return true
        }

        mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d { index += 1 }
        }

        /// Moves past the next `terminator`, or fails saying what was left open.
        mutating func skip(past terminator: String, what: String) throws(ObjectStoreError) {
            while !atEnd {
                if starts(with: terminator) {
                    index += terminator.utf8.count
                    return
                }
                index += 1
            }
            throw .malformed("XML: unterminated \(what)")
        }

        /// Whitespace, the XML declaration, processing instructions and comments.
        mutating func skipMisc() throws(ObjectStoreError) {
            while true {
                skipWhitespace()
                if starts(with: "<?") {
                    try skip(past: "?>", what: "processing instruction")
                } else if starts(with: "<!--") {
                    try skip(past: "-->", what: "comment")
                } else if starts(with: "<!") {
                    throw .malformed("XML: document type declarations are not accepted")
                } else {
                    return
                }
            }
        }

        mutating func name() throws(ObjectStoreError) -> String {
            let start = index
            while let byte = peek(), !(byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d),
                  byte != UInt8(ascii: ">"), byte != UInt8(ascii: "/"), byte != UInt8(ascii: "="), byte != UInt8(ascii: "<") {
                index += 1
            }
            guard index > start else { throw .malformed("XML: missing name at byte \(start)") }
            let full = String(decoding: bytes[start..<index], as: UTF8.self)
            if let colon = full.lastIndex(of: ":") { return String(full[full.index(after: colon)...]) }
            return full
        }

        /// An element starting at '<', with everything up to its end tag.
        mutating func element(depth: Int) throws(ObjectStoreError) -> XMLTree {
            guard depth < Self.maximumDepth else { throw .malformed("XML: nested more than \(Self.maximumDepth) deep") }
            index += 1  // '<'
            let tag = try name()
            // Attributes: skipped, but read properly so a '>' inside a quoted value is not the tag's end.
            while true {
                skipWhitespace()
                guard let byte = peek() else { throw .malformed("XML: unterminated <\(tag)> tag") }
                if byte == UInt8(ascii: "/") {
                    guard peek(1) == UInt8(ascii: ">") else { throw .malformed("XML: stray '/' in <\(tag)>") }
                    index += 2
                    return XMLTree(name: tag, children: [], text: "")
                }
                if byte == UInt8(ascii: ">") {
                    index += 1
                    break
                }
                _ = try name()
                skipWhitespace()
                guard peek() == UInt8(ascii: "=") else { throw .malformed("XML: attribute without a value in <\(tag)>") }
                index += 1
                skipWhitespace()
                guard let quote = peek(), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                    throw .malformed("XML: unquoted attribute value in <\(tag)>")
                }
                index += 1
                while let next = peek(), next != quote { index += 1 }
                guard !atEnd else { throw .malformed("XML: unterminated attribute value in <\(tag)>") }
                index += 1
            }
            var children: [XMLTree] = []
            var text: [UInt8] = []
            while true {
                guard let byte = peek() else { throw .malformed("XML: <\(tag)> is never closed") }
                if byte != UInt8(ascii: "<") {
                    try characterData(into: &text)
                } else if starts(with: "</") {
                    index += 2
                    let closing = try name()
                    skipWhitespace()
                    guard closing == tag, peek() == UInt8(ascii: ">") else {
                        throw .malformed("XML: <\(tag)> closed by </\(closing)>")
                    }
                    index += 1
                    return XMLTree(name: tag, children: children, text: String(decoding: text, as: UTF8.self))
                } else if starts(with: "<![CDATA[") {
                    index += 9
                    let start = index
                    try skip(past: "]]>", what: "CDATA section")
                    text.append(contentsOf: bytes[start..<(index - 3)])
                } else if starts(with: "<!--") {
                    try skip(past: "-->", what: "comment")
                } else if starts(with: "<?") {
                    try skip(past: "?>", what: "processing instruction")
                } else if starts(with: "<!") {
                    throw .malformed("XML: declarations are not accepted inside <\(tag)>")
                } else {
                    children.append(try element(depth: depth + 1))
                }
            }
        }

        /// Text up to the next '<', references decoded.
        mutating func characterData(into text: inout [UInt8]) throws(ObjectStoreError) {
            while let byte = peek(), byte != UInt8(ascii: "<") {
                if byte != UInt8(ascii: "&") {
                    text.append(byte)
                    index += 1
                    continue
                }
                let start = index + 1
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: ";"), end - start < 10 { end += 1 }
                guard end < bytes.count, bytes[end] == UInt8(ascii: ";") else { throw .malformed("XML: unterminated '&' reference") }
                let reference = String(decoding: bytes[start..<end], as: UTF8.self)
                text.append(contentsOf: try Self.decode(reference))
                index = end + 1
            }
        }

        static func decode(_ reference: String) throws(ObjectStoreError) -> [UInt8] {
            switch reference {
            case "lt": return [UInt8(ascii: "<")]
            case "gt": return [UInt8(ascii: ">")]
            case "amp": return [UInt8(ascii: "&")]
            case "quot": return [UInt8(ascii: "\"")]
            case "apos": return [UInt8(ascii: "'")]
            default: break
            }
            var digits = Substring(reference)
            guard digits.hasPrefix("#") else { throw .malformed("XML: unknown entity &\(reference);") }
            digits = digits.dropFirst()
            var radix = 10
            if digits.hasPrefix("x") || digits.hasPrefix("X") {
                radix = 16
                digits = digits.dropFirst()
            }
            guard let value = UInt32(digits, radix: radix), let scalar = Unicode.Scalar(value) else {
                throw .malformed("XML: bad character reference &\(reference);")
            }
            return Array(String(Character(scalar)).utf8)
        }
    }
}
