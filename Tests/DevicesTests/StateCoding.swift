import Foundation
import Testing

/// JSON round trips for device states, and a way to hand-edit one field of a saved state.
enum StateCoding {
    static func roundTrip<State: Codable>(_ state: State) throws -> State {
        try JSONDecoder().decode(State.self, from: JSONEncoder().encode(state))
    }

    /// Encodes `state`, replaces `key` with `value`, and decodes the result.
    static func decode<State: Codable>(_ state: State, replacing key: String, with value: Any) throws -> State {
        let data = try JSONEncoder().encode(state)
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt)
        }
        #expect(object[key] != nil, "no field \(key) in the encoded state")
        object[key] = value
        return try JSONDecoder().decode(State.self, from: JSONSerialization.data(withJSONObject: object))
    }
}
