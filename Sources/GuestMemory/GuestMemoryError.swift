import SystemPackage

/// Why guest memory could not be set up; each message names the file or region and what was expected.
package enum GuestMemoryError: Error, CustomStringConvertible, Equatable {
    case fileMissing(path: String)
    case fileNotWritable(path: String, Errno)
    case fileOpen(path: String, Errno)
    case fileSizeMismatch(path: String, actual: UInt64, expected: UInt64)
    case fileExists(path: String)
    case fileCreate(path: String, Errno)
    case notADirectory(path: String)
    case hugePageSizeMismatch(path: String, sizeInBytes: UInt64, hugePageSize: UInt64)
    /// The hugetlbfs pool cannot reserve the region's huge pages.
    case hugePagesUnavailable(region: String, sizeInBytes: UInt64, path: String)
    case systemCall(name: String, region: String, Errno)
    case invalidSize(region: String, sizeInBytes: UInt64, reason: String)
    case unknownRegion(name: String, known: [String])
    case outOfRange(address: GuestAddress, length: UInt64)
    /// An access to a region that runs past its end.
    case outsideRegion(name: String, offset: RegionOffset, length: UInt64, sizeInBytes: UInt64)

    package var description: String {
        switch self {
        case .fileMissing(let path):
            "RAM file \(path) does not exist; create it with the guest's memory size (e.g. truncate -s 512M \(path))"
        case .fileNotWritable(let path, let errno):
            "RAM file \(path) cannot be opened read-write (\(errno)); guest RAM must be writable"
        case .fileOpen(let path, let errno):
            "cannot open \(path): \(errno)"
        case .fileSizeMismatch(let path, let actual, let expected):
            "RAM file \(path) is \(actual) bytes; expected exactly \(expected) bytes (the region size)"
        case .fileExists(let path):
            "\(path) already exists; pass --force to overwrite it"
        case .fileCreate(let path, let errno):
            "cannot create \(path): \(errno)"
        case .notADirectory(let path):
            "\(path) is not a directory; expected a hugetlbfs mount point"
        case .hugePageSizeMismatch(let path, let size, let hugePageSize):
            "region size \(size) is not a multiple of the huge page size \(hugePageSize) of \(path)"
        case .hugePagesUnavailable(let region, let size, let path):
            "region \(region) needs \(size >> 20) MiB of free huge pages in \(path) and the pool has fewer; reserve more in /proc/sys/vm/nr_hugepages"
        case .systemCall(let name, let region, let errno):
            "\(name) for region \(region) failed: \(errno)"
        case .invalidSize(let region, let size, let reason):
            "region \(region) cannot be \(size) bytes: \(reason)"
        case .unknownRegion(let name, let known):
            "no region named \(name); regions are: \(known.joined(separator: ", "))"
        case .outOfRange(let address, let length):
            "guest range \(address)+0x\(String(length, radix: 16)) is not in guest RAM"
        case .outsideRegion(let name, let offset, let length, let size):
            "region \(name): 0x\(String(length, radix: 16)) bytes at offset 0x\(String(offset.rawValue, radix: 16)) run past its end (0x\(String(size, radix: 16)) bytes)"
        }
    }
}
