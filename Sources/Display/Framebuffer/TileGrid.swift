/// The screen cut into square tiles (64 × 64, ZRLE's tile size): the unit of change detection.
/// Tiles on the right and bottom edges are cut short by the screen's edge.
package struct TileGrid: Sendable, Equatable {
    package static let tileSize = 64

    package let width: Int
    package let height: Int
    package let columns: Int
    package let rows: Int

    package init(width: Int, height: Int) {
        self.width = width
        self.height = height
        columns = (width + Self.tileSize - 1) / Self.tileSize
        rows = (height + Self.tileSize - 1) / Self.tileSize
    }

    package var tileCount: Int { columns * rows }
    package var screen: ScreenRectangle { ScreenRectangle(x: 0, y: 0, width: width, height: height) }

    /// The index of the tile in `column`, `row`.
    package func index(column: Int, row: Int) -> Int { row * columns + column }

    /// The screen area of tile (`column`, `row`), cut at the screen's edge.
    package func rectangle(column: Int, row: Int) -> ScreenRectangle {
        let x = column * Self.tileSize, y = row * Self.tileSize
        return ScreenRectangle(x: x, y: y, width: min(Self.tileSize, width - x), height: min(Self.tileSize, height - y))
    }

    /// The columns and rows of the tiles `area` touches (empty ranges for an empty area).
    package func tiles(touching area: ScreenRectangle) -> (columns: Range<Int>, rows: Range<Int>) {
        let clipped = area.intersection(screen)
        guard !clipped.isEmpty else { return (0..<0, 0..<0) }
        return ((clipped.x / Self.tileSize)..<((clipped.maxX + Self.tileSize - 1) / Self.tileSize),
                (clipped.y / Self.tileSize)..<((clipped.maxY + Self.tileSize - 1) / Self.tileSize))
    }
}
