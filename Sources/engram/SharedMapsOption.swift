import ArgumentParser

/// `--shared-maps PREFIX:NAME[,NAME...]`: one file PREFIX.NAME per named region (the 2009 -sharedmaps idea).
struct SharedMapsOption: ExpressibleByArgument, Equatable {
    let prefix: String
    let regionNames: [String]

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":") else { return nil }
        prefix = String(argument[..<colon])
        regionNames = argument[argument.index(after: colon)...].split(separator: ",").map(String.init)
        guard !prefix.isEmpty, !regionNames.isEmpty else { return nil }
    }

    /// The file created for `region`.
    func path(for region: String) -> String { "\(prefix).\(region)" }
}

extension SharedMapsOption? {
    /// Region name → file, as the VM library takes it (empty without the option).
    var pathsByRegion: [String: String] {
        guard let option = self else { return [:] }
        return Dictionary(option.regionNames.map { ($0, option.path(for: $0)) }, uniquingKeysWith: { first, _ in first })
    }
}
