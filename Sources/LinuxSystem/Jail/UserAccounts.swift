import Glibc

/// Users and groups by name or number (the password and group databases).
package enum UserAccounts {
    /// The uid `text` names: a number, or a user name the password database knows; nil if neither.
    package static func userID(_ text: String) -> UInt32? {
        if let number = UInt32(text) { return number }
        guard let entry = unsafe getpwnam(text) else { return nil }
        return unsafe entry.pointee.pw_uid
    }

    /// The gid `text` names: a number, or a group name the group database knows; nil if neither.
    package static func groupID(_ text: String) -> UInt32? {
        if let number = UInt32(text) { return number }
        guard let entry = unsafe getgrnam(text) else { return nil }
        return unsafe entry.pointee.gr_gid
    }
}
