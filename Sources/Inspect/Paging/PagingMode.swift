/// How a vCPU translates virtual addresses, as its control registers select it. A walk needs the
/// mode as well as CR3: the same CR3 value means a 2-level, 3-level, 4-level or 5-level tree.
package enum PagingMode: String, CaseIterable, Sendable {
    /// CR0.PG clear: virtual addresses are physical addresses.
    case none
    /// 32-bit paging: 2 levels of 4-byte entries, 4 MiB pages where CR4.PSE allows them.
    case legacy32
    /// PAE paging: a 4-entry PDPT, then 2 levels of 8-byte entries; 2 MiB pages.
    case pae
    /// IA-32e 4-level paging (long mode): 48-bit virtual addresses; 2 MiB and 1 GiB pages.
    case fourLevel
    /// IA-32e 5-level paging (long mode with CR4.LA57): 57-bit virtual addresses.
    case fiveLevel

    private static let cr0PG: UInt64 = 1 << 31
    private static let cr4PAE: UInt64 = 1 << 5
    private static let cr4LA57: UInt64 = 1 << 12
    private static let eferLMA: UInt64 = 1 << 10

    /// The mode `processor` is in. EFER.LMA (not LME) decides long mode: LME is only the request,
    /// LMA is set by the CPU once paging is on with it.
    package init(processor: ProcessorState) {
        if processor.cr0 & Self.cr0PG == 0 {
            self = .none
        } else if processor.efer & Self.eferLMA != 0 {
            self = processor.cr4 & Self.cr4LA57 != 0 ? .fiveLevel : .fourLevel
        } else if processor.cr4 & Self.cr4PAE != 0 {
            self = .pae
        } else {
            self = .legacy32
        }
    }

    /// The mode for people: "4-level", "5-level", "PAE", "32-bit", "off".
    package var displayName: String {
        switch self {
        case .none: "off"
        case .legacy32: "32-bit"
        case .pae: "PAE"
        case .fourLevel: "4-level"
        case .fiveLevel: "5-level"
        }
    }

    /// The names of the table levels a walk reads, top first (Intel SDM vol. 3 §4 names).
    package var levelNames: [String] {
        switch self {
        case .none: []
        case .legacy32: ["PD", "PT"]
        case .pae: ["PDPT", "PD", "PT"]
        case .fourLevel: ["PML4", "PDPT", "PD", "PT"]
        case .fiveLevel: ["PML5", "PML4", "PDPT", "PD", "PT"]
        }
    }
}
