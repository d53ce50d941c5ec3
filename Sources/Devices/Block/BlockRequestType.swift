/// virtio-blk request types and status bytes (virtio 1.x, section 5.2.6).
enum BlockRequestType {
    static let read: UInt32 = 0
    static let write: UInt32 = 1
    static let flush: UInt32 = 4
    static let getID: UInt32 = 8
    static let discard: UInt32 = 11
    static let writeZeroes: UInt32 = 13
}

enum BlockStatus {
    static let ok: UInt8 = 0
    static let ioError: UInt8 = 1
    static let unsupported: UInt8 = 2
}

/// virtio-blk feature bits (virtio 1.x, section 5.2.3).
enum BlockFeature {
    static let segmentMaximum: UInt64 = 1 << 2
    static let readOnly: UInt64 = 1 << 5
    static let blockSize: UInt64 = 1 << 6
    static let flush: UInt64 = 1 << 9
    static let discard: UInt64 = 1 << 13
    static let writeZeroes: UInt64 = 1 << 14
}
