import Foundation

/// A kernel symbol table in System.map / /proc/kallsyms form: "ffffffff82161900 D linux_banner".
public struct KernelSymbolMap: Sendable {
    public let symbols: [String: UInt64]

    public init(text: String) {
        var symbols: [String: UInt64] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, fields[1].count == 1, let address = UInt64(fields[0], radix: 16) else { continue }
            if symbols[String(fields[2])] == nil { symbols[String(fields[2])] = address }
        }
        self.symbols = symbols
    }

    public func address(of name: String) -> UInt64? { symbols[name] }

    /// The System.map in the unpacked kernel package (guest/linux/build/kernel/boot/System.map-RELEASE),
    /// or nil when it is Debian's placeholder, which holds a single line and no real symbol.
    public static func packaged() throws -> KernelSymbolMap? {
        guard let release = QEMULinuxGuest.kernelRelease else { return nil }
        let path = QEMULinuxGuest.kernelDirectory.appendingPathComponent("kernel/boot/System.map-\(release)")
        let map = KernelSymbolMap(text: try String(contentsOf: path, encoding: .utf8))
        return map.symbols.count > 1 ? map : nil
    }
}
