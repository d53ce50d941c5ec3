import GuestMemory

/// Why restored memory could not be set up: a region could not be made, or a page not read.
package enum MemoryLoadError: Error, CustomStringConvertible {
    case region(GuestMemoryError)
    case page(PageSourceError)
    case unsupported(String)

    package var description: String {
        switch self {
        case .region(let error): error.description
        case .page(let error): error.description
        case .unsupported(let reason): reason
        }
    }
}
