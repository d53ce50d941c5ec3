import Devices
import Display
import Foundation
import Testing
import TestSupport

@Suite struct FramebufferViewTests {
    let directory = TemporaryDirectory()

    @Test func opensAFileAndReadsItsPixels() throws {
        let file = try DisplayFile(in: directory, width: 130, height: 70)
        let view = try FramebufferView(path: file.path)
        #expect(view.width == 130 && view.height == 70)
        #expect(view.geometry.stride == 576)
        #expect(view.controlSocketPath == "/run/engram/vm.sock")
        #expect(view.fileName == "display.fb")
        var area: [UInt32] = []
        view.copyPixels(x: 60, y: 10, width: 70, height: 60, into: &area)
        // The top byte the file holds (0xAB) is cleared.
        #expect(area == file.pixels(x: 60, y: 10, width: 70, height: 60))
    }

    @Test func seesChangesMadeAfterItWasOpened() throws {
        let file = try DisplayFile(in: directory)
        let view = try FramebufferView(path: file.path)
        file.fill(x: 10, y: 20, width: 3, height: 2, colour: 0x0012_3456)
        var area: [UInt32] = []
        view.copyPixels(x: 10, y: 20, width: 3, height: 2, into: &area)
        #expect(area == [UInt32](repeating: 0x0012_3456, count: 6))
    }

    @Test func viewOnlyWithoutASocketPath() throws {
        let file = try DisplayFile(in: directory, controlSocketPath: "")
        #expect(try FramebufferView(path: file.path).controlSocketPath == nil)
    }

    @Test func refusesMissingShortAndForeignFiles() throws {
        let missing = directory.path("none.fb")
        #expect(throws: DisplayError.self) { try FramebufferView(path: missing) }
        do { _ = try FramebufferView(path: missing) } catch {
            #expect(error.description.contains(missing) && error.description.contains("No such file"))
        }

        let short = directory.path("short.fb")
        _ = FileManager.default.createFile(atPath: short, contents: Data(count: 100))
        do { _ = try FramebufferView(path: short) } catch {
            #expect(error == .fileTooSmall(path: short, sizeInBytes: 100))
            #expect(error.description.contains(short))
        }

        let foreign = directory.path("foreign.fb")
        _ = FileManager.default.createFile(atPath: foreign, contents: Data(count: 8192))
        do { _ = try FramebufferView(path: foreign) } catch {
            #expect(error.description.contains(foreign) && error.description.contains("ENGRAMFB"))
        }

        // A header promising more pixels than the file holds.
        let file = try DisplayFile(in: directory, name: "cut.fb")
        truncate(file.path, off_t(FramebufferHeader.size + 4096))
        do { _ = try FramebufferView(path: file.path) } catch {
            #expect(error.description.contains("cut.fb") && error.description.contains("too small"))
        }

        #expect(throws: DisplayError.notAFile(path: directory.url.path)) { try FramebufferView(path: directory.url.path) }
    }

    @Test func shadowFindsExactlyTheChangedTiles() throws {
        let file = try DisplayFile(in: directory)
        let view = try FramebufferView(path: file.path)
        var shadow = FramebufferShadow(view: view)
        #expect(shadow.scan().isEmpty)
        file.fill(x: 63, y: 0, width: 2, height: 1, colour: 0x0011_1111)  // tiles (0,0) and (1,0)
        file.fill(x: 199, y: 149, width: 1, height: 1, colour: 0x0022_2222)  // the cut corner tile (3,2)
        let changed = shadow.scan()
        #expect(changed.count == 3)
        #expect(changed.contains(column: 0, row: 0) && changed.contains(column: 1, row: 0) && changed.contains(column: 3, row: 2))
        #expect(shadow.scan().isEmpty)
    }

    @Test func tileRunsMergeAndCutToTheArea() {
        let grid = TileGrid(width: 200, height: 150)
        #expect(grid.columns == 4 && grid.rows == 3)
        var tiles = TileSet(grid: grid)
        tiles.insert(column: 1, row: 0)
        tiles.insert(column: 2, row: 0)
        tiles.insert(column: 0, row: 2)
        tiles.insert(column: 3, row: 2)
        #expect(tiles.rectangles(within: grid.screen) == [
            ScreenRectangle(x: 64, y: 0, width: 128, height: 64),
            ScreenRectangle(x: 0, y: 128, width: 64, height: 22),
            ScreenRectangle(x: 192, y: 128, width: 8, height: 22),
        ])
        #expect(tiles.rectangles(within: ScreenRectangle(x: 100, y: 10, width: 50, height: 10)) == [
            ScreenRectangle(x: 100, y: 10, width: 50, height: 10),
        ])
        tiles.remove(touching: ScreenRectangle(x: 100, y: 0, width: 100, height: 150), onlyCovered: true)
        #expect(tiles.count == 2)  // (1,0) is only partly covered and stays; (2,0) and (3,2) are gone
        #expect(tiles.contains(column: 1, row: 0) && !tiles.contains(column: 2, row: 0) && !tiles.contains(column: 3, row: 2))
    }
}
