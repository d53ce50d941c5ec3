/// Just enough ACPI Machine Language to describe Engram's DSDT devices: names, integers,
/// strings, packages, buffers, scopes, devices and a method with one `If`/`Notify`.
///
/// Each function returns the encoded bytes of one term (ACPI 6.4, chapter 20), so a table is
/// written as nested calls that read like the ASL they stand for.
enum AML {
    /// A name segment: four characters, padded with `_`.
    static func nameSegment(_ name: String) -> [UInt8] {
        precondition(name.utf8.count <= 4 && !name.isEmpty, "AML name segment \(name)")
        return Array(name.utf8) + [UInt8](repeating: UInt8(ascii: "_"), count: 4 - name.utf8.count)
    }

    /// A name path: `\A.B` from the root (`absolute`), or one relative segment.
    static func namePath(_ segments: [String], absolute: Bool = false) -> [UInt8] {
        let root: [UInt8] = absolute ? [0x5c] : []
        switch segments.count {
        case 1: return root + nameSegment(segments[0])
        case 2: return root + [0x2e] + segments.flatMap(nameSegment)                      // DualNamePrefix
        default: return root + [0x2f, UInt8(segments.count)] + segments.flatMap(nameSegment)  // MultiNamePrefix
        }
    }

    /// The shortest integer encoding of `value`.
    static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [0x00]                                                   // ZeroOp
        case 1: return [0x01]                                                   // OneOp
        case ...0xff: return [0x0a, UInt8(value)]                               // BytePrefix
        case ...0xffff: return [0x0b] + littleEndian(value, bytes: 2)           // WordPrefix
        case ...0xffff_ffff: return [0x0c] + littleEndian(value, bytes: 4)      // DWordPrefix
        default: return [0x0e] + littleEndian(value, bytes: 8)                  // QWordPrefix
        }
    }

    /// A 32-bit integer always encoded as a DWord (as VMGenID's ADDR package expects).
    static func dword(_ value: UInt32) -> [UInt8] { [0x0c] + littleEndian(UInt64(value), bytes: 4) }

    static func string(_ text: String) -> [UInt8] { [0x0d] + Array(text.utf8) + [0] }

    /// `Name(NAME, object)`.
    static func name(_ name: String, _ object: [UInt8]) -> [UInt8] { [0x08] + nameSegment(name) + object }

    /// `Package(n) { elements }`.
    static func package(_ elements: [[UInt8]]) -> [UInt8] {
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [0x12] + packageLength(body.count) + body
    }

    /// `Buffer(n) { bytes }`.
    static func buffer(_ bytes: [UInt8]) -> [UInt8] {
        let body = integer(UInt64(bytes.count)) + bytes
        return [0x11] + packageLength(body.count) + body
    }

    /// `Scope(path) { terms }`.
    static func scope(_ path: [UInt8], _ terms: [[UInt8]]) -> [UInt8] {
        let body = path + terms.flatMap { $0 }
        return [0x10] + packageLength(body.count) + body
    }

    /// `Device(NAME) { terms }`.
    static func device(_ name: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameSegment(name) + terms.flatMap { $0 }
        return [0x5b, 0x82] + packageLength(body.count) + body
    }

    /// `Method(NAME, arguments, NotSerialized) { terms }`.
    static func method(_ name: String, arguments: UInt8, _ terms: [[UInt8]]) -> [UInt8] {
        precondition(arguments < 8, "AML methods take at most 7 arguments")
        let body = nameSegment(name) + [arguments] + terms.flatMap { $0 }
        return [0x14] + packageLength(body.count) + body
    }

    /// `If (predicate) { terms }`.
    static func ifThen(_ predicate: [UInt8], _ terms: [[UInt8]]) -> [UInt8] {
        let body = predicate + terms.flatMap { $0 }
        return [0xa0] + packageLength(body.count) + body
    }

    /// `LEqual(a, b)`.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { [0x93] + a + b }

    /// `Arg0` … `Arg6`.
    static func argument(_ index: UInt8) -> [UInt8] {
        precondition(index < 7, "AML has Arg0 to Arg6")
        return [0x68 + index]
    }

    /// `Notify(target, value)`.
    static func notify(_ target: [UInt8], _ value: UInt64) -> [UInt8] { [0x86] + target + integer(value) }

    /// A resource template holding one extended interrupt (consumer, edge, active high,
    /// exclusive) on `gsi`, then the end tag.
    static func interruptResource(gsi: UInt32) -> [UInt8] {
        let interrupt: [UInt8] = [0x89, 0x06, 0x00, 0x03, 0x01] + littleEndian(UInt64(gsi), bytes: 4)
        return buffer(interrupt + [0x79, 0x00])
    }

    /// PkgLength for a body of `count` bytes: the length counts its own bytes too.
    static func packageLength(_ count: Int) -> [UInt8] {
        if count + 1 < 0x40 { return [UInt8(count + 1)] }
        for extra in 1...3 {
            let total = count + 1 + extra
            guard total < 1 << (4 + 8 * extra) else { continue }
            return [UInt8(extra << 6) | UInt8(total & 0xf)] + littleEndian(UInt64(total >> 4), bytes: extra)
        }
        preconditionFailure("AML package of \(count) bytes exceeds 256 MiB")
    }

    private static func littleEndian(_ value: UInt64, bytes: Int) -> [UInt8] {
        (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
