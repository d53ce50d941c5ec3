import Devices
import Testing

/// The display file's header: round trip, geometry limits, and refusals with one-line reasons.
@Suite struct FramebufferHeaderTests {
    private func geometry(_ text: String) throws -> FramebufferGeometry { try FramebufferGeometry.parse(text).get() }

    @Test func roundTripsEveryField() throws {
        let header = FramebufferHeader(geometry: try geometry("1024x768"), guestAddress: 0xd000_0000, controlSocketPath: "/run/vm.sock")
        let bytes = header.bytes
        #expect(bytes.count == 4096)
        #expect(Array(bytes[0..<8]) == Array("ENGRAMFB".utf8))
        #expect(header.fileSize == 4096 + 1024 * 768 * 4)
        #expect(try FramebufferHeader.decode(bytes, fileSize: header.fileSize, name: "f").get() == header)
    }

    @Test func strideIsRoundedToSixtyFourBytesAndTheAreaToPages() throws {
        let odd = try geometry("800x601")
        #expect(odd.stride == 3200)
        let narrow = try geometry("100x100")
        #expect(narrow.stride == 448)
        #expect(narrow.pixelAreaBytes == 45056)
    }

    @Test func geometryTextIsChecked() {
        for bad in ["1024", "x768", "1024x", "axb", "10x768", "1024x9000", "-5x100"] {
            #expect(throws: FramebufferFormatError.self) { try FramebufferGeometry.parse(bad).get() }
        }
        #expect((try? FramebufferGeometry.parse("640X480").get())?.width == 640)
    }

    @Test func damagedHeadersAreRefused() throws {
        let good = FramebufferHeader(geometry: try geometry("640x480"), guestAddress: 0xd000_0000)
        func refusal(_ edit: (inout [UInt8]) -> Void, size: Int? = nil) -> String {
            var bytes = good.bytes
            edit(&bytes)
            switch FramebufferHeader.decode(bytes, fileSize: size ?? good.fileSize, name: "screen") {
            case .success: return "accepted"
            case .failure(let error): return error.description
            }
        }
        #expect(refusal { $0[0] = 0 }.contains("not an Engram display file"))
        #expect(refusal { $0[8] = 9 }.contains("version 9"))
        #expect(refusal { $0[28] = 7 }.contains("pixel format 7"))
        #expect(refusal { $0[24] = 1 }.contains("stride"))
        #expect(refusal { $0[16] = 0; $0[17] = 0 }.contains("outside"))
        #expect(refusal({ _ in }, size: 4096).contains("too small"))
        #expect(refusal { _ in } == "accepted")
        #expect(FramebufferHeader.decode([1, 2, 3], fileSize: 3, name: "tiny").isFailureMentioning("not an Engram display file"))
    }
}

extension Result where Failure == FramebufferFormatError {
    func isFailureMentioning(_ text: String) -> Bool {
        if case .failure(let error) = self { return error.description.contains(text) }
        return false
    }
}
