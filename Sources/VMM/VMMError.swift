/// Why a VM could not be built, restored, received or resumed; the message names the thing and
/// what was expected, ready to print as it is.
package enum VMMError: Error, CustomStringConvertible, Equatable {
    /// A request that cannot be carried out as given (options that do not go together, a
    /// region the snapshot does not have).
    case invalidRequest(String)
    /// Setting up or running the VM failed.
    case failed(String)

    package var description: String {
        switch self {
        case .invalidRequest(let message), .failed(let message): message
        }
    }
}
