import LinuxSystem

/// A value a test shares with the threads it starts, as a class so closures can capture it.
public final class Shared<Value: Sendable>: Sendable {
    private let locked: Locked<Value>

    public init(_ value: Value) { locked = Locked(value) }

    public var value: Value {
        get { locked.withLock { $0 } }
        set { locked.withLock { $0 = newValue } }
    }

    public func withLock<Result>(_ body: (inout Value) -> Result) -> Result { locked.withLock { body(&$0) } }
}
