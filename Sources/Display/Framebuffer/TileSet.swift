/// A set of tiles of a `TileGrid`, as a bitmap: which tiles changed since a client last saw them.
package struct TileSet: Sendable, Equatable {
    package let grid: TileGrid
    private var words: [UInt64]

    /// An empty set, or every tile when `full`.
    package init(grid: TileGrid, full: Bool = false) {
        self.grid = grid
        words = [UInt64](repeating: 0, count: (grid.tileCount + 63) / 64)
        if full { insertAll() }
    }

    package var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
    package var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    package func contains(column: Int, row: Int) -> Bool {
        let index = grid.index(column: column, row: row)
        return words[index / 64] & (1 << UInt64(index % 64)) != 0
    }

    package mutating func insert(column: Int, row: Int) {
        let index = grid.index(column: column, row: row)
        words[index / 64] |= 1 << UInt64(index % 64)
    }

    package mutating func remove(column: Int, row: Int) {
        let index = grid.index(column: column, row: row)
        words[index / 64] &= ~(1 << UInt64(index % 64))
    }

    package mutating func insertAll() {
        for index in 0..<grid.tileCount { words[index / 64] |= 1 << UInt64(index % 64) }
    }

    package mutating func removeAll() {
        for index in words.indices { words[index] = 0 }
    }

    package mutating func formUnion(_ other: TileSet) {
        precondition(other.grid == grid, "tile sets of different grids")
        for index in words.indices { words[index] |= other.words[index] }
    }

    /// The tiles of this set inside `area`, as rectangles cut to `area`: each run of
    /// horizontally adjacent tiles in a tile row becomes one rectangle (fewer headers, and for
    /// ZRLE the same tiles as the grid's, since runs start on tile boundaries).
    package func rectangles(within area: ScreenRectangle) -> [ScreenRectangle] {
        let (columns, rows) = grid.tiles(touching: area)
        var result: [ScreenRectangle] = []
        for row in rows {
            var column = columns.lowerBound
            while column < columns.upperBound {
                guard contains(column: column, row: row) else {
                    column += 1
                    continue
                }
                var end = column + 1
                while end < columns.upperBound && contains(column: end, row: row) { end += 1 }
                let first = grid.rectangle(column: column, row: row), last = grid.rectangle(column: end - 1, row: row)
                let run = ScreenRectangle(x: first.x, y: first.y, width: last.maxX - first.x, height: first.height)
                result.append(run.intersection(area))
                column = end
            }
        }
        return result
    }

    /// Removes the tiles `area` touches; only those wholly inside it when `onlyCovered`.
    package mutating func remove(touching area: ScreenRectangle, onlyCovered: Bool) {
        let (columns, rows) = grid.tiles(touching: area)
        for row in rows {
            for column in columns where !onlyCovered || area.contains(grid.rectangle(column: column, row: row)) {
                remove(column: column, row: row)
            }
        }
    }
}
