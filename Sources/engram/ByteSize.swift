import ArgumentParser

/// A size given on the command line: bytes, or with a K, M, G or T suffix (powers of 1024).
struct ByteSize: ExpressibleByArgument, Equatable {
    let bytes: UInt64

    init?(argument: String) {
        let text = argument.uppercased()
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text)
        var multiplier: UInt64 = 1
        if digits.hasSuffix("IB") { digits = digits.dropLast(2) } else if digits.hasSuffix("B") { digits = digits.dropLast() }
        if let last = digits.last, let unit = units[last] { multiplier = unit; digits = digits.dropLast() }
        guard let value = UInt64(digits), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        bytes = product
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
