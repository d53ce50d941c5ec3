/// The rectangle encodings Engram sends (RFC 6143 §7.7), by their RFB numbers.
package enum RFBEncoding: Int32, Sendable {
    /// Pixels as they are, row after row.
    case raw = 0
    /// Zlib-compressed 64 × 64 tiles, each solid, palette-packed or raw.
    case zrle = 16
}
