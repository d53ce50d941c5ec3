/// An area of the screen in pixels: the unit of RFB update requests and rectangles.
package struct ScreenRectangle: Sendable, Equatable, CustomStringConvertible {
    package var x: Int
    package var y: Int
    package var width: Int
    package var height: Int

    package init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    package var isEmpty: Bool { width <= 0 || height <= 0 }
    package var maxX: Int { x + width }
    package var maxY: Int { y + height }

    /// The common part of both, or an empty rectangle.
    package func intersection(_ other: ScreenRectangle) -> ScreenRectangle {
        let left = max(x, other.x), top = max(y, other.y)
        let right = min(maxX, other.maxX), bottom = min(maxY, other.maxY)
        guard right > left, bottom > top else { return ScreenRectangle(x: left, y: top, width: 0, height: 0) }
        return ScreenRectangle(x: left, y: top, width: right - left, height: bottom - top)
    }

    /// True when `other` lies wholly inside this one.
    package func contains(_ other: ScreenRectangle) -> Bool {
        other.x >= x && other.y >= y && other.maxX <= maxX && other.maxY <= maxY
    }

    package var description: String { "\(width)x\(height) at \(x),\(y)" }
}
