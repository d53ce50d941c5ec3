/// The 4 KiB page: x86-64's base page, the unit of guest memory, snapshots, dirty logs and
/// userfaultfd. Declared once; everything else derives from it.
package enum PageSize {
    /// Bytes in a page.
    package static let bytes = 4096
    /// Bytes in a page, for arithmetic on file offsets and guest addresses.
    package static let bytes64 = UInt64(bytes)
    /// log2 of the page size.
    package static let shift = 12
}
