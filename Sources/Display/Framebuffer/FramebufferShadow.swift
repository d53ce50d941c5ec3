/// A copy of the pixels as last seen, compared with the live mapping tile by tile to find what
/// changed. Owned by the one thread that polls for changes.
package struct FramebufferShadow {
    package let view: FramebufferView
    package let grid: TileGrid
    private var pixels: [UInt8]

    /// A shadow holding the pixels as they are now.
    package init(view: FramebufferView) {
        self.view = view
        grid = TileGrid(width: view.width, height: view.height)
        pixels = [UInt8](repeating: 0, count: view.geometry.pixelBytes)
        _ = scan()
    }

    /// The tiles whose pixels differ from the shadow; the shadow takes their new pixels.
    package mutating func scan() -> TileSet {
        var changed = TileSet(grid: grid)
        for y in 0..<grid.height {
            let row = y / TileGrid.tileSize
            view.refreshRow(y, in: &pixels, segmentWidth: TileGrid.tileSize) { column in changed.insert(column: column, row: row) }
        }
        return changed
    }
}
