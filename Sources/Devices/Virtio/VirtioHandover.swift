/// What a back-end keeps across a live update's exec (as QEMU's cpr-exec keeps descriptors):
/// host descriptors, each under a name of the back-end's choosing (`disk`, `listener`,
/// `conn.5000.1073741824`), and state that only means something together with them (vsock's
/// connection table) in the back-end's own versioned encoding.
///
/// Only a live update carries it. Restore and migration build back-ends from their
/// configuration alone, and a back-end whose host side did not come along resets (vsock's
/// transport reset), so nothing here ever reaches a snapshot.
package struct VirtioHandover: Sendable, Equatable {
    /// One host descriptor kept open across exec.
    package struct Descriptor: Sendable, Equatable {
        package var name: String
        package var descriptor: CInt

        package init(name: String, descriptor: CInt) {
            self.name = name
            self.descriptor = descriptor
        }
    }

    package var descriptors: [Descriptor]
    /// The back-end's own state for the new process (empty: none).
    package var state: [UInt8]

    package init(descriptors: [Descriptor], state: [UInt8] = []) {
        self.descriptors = descriptors
        self.state = state
    }

    /// The descriptor kept under `name`, if any.
    package func descriptor(named name: String) -> CInt? {
        descriptors.first { $0.name == name }?.descriptor
    }
}

/// Why a back-end cannot continue from what the previous process handed over: one line naming
/// the piece and what was expected.
package enum VirtioHandoverError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The state bytes do not decode: where, and what was wrong.
    case malformed(what: String, reason: String)
    /// The state names a descriptor the handover does not hold.
    case missingDescriptor(name: String)

    package var description: String {
        switch self {
        case .malformed(let what, let reason): "\(what): \(reason)"
        case .missingDescriptor(let name): "the handed-over state names descriptor \(name), which was not kept across exec"
        }
    }
}
