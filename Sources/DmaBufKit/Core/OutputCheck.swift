import DmaBufKernel
import Foundation

/// Outputs a command will write (reports, frame files), checked before it runs: a report that
/// cannot be written is found at once, not after minutes of work. Errors carry the errno.
public enum OutputCheck {
    /// A directory that exists and this user can write in.
    public static func directory(_ directory: String, for what: String) throws(ConfigurationError) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            throw ConfigurationError(what, nil, "the directory \(directory) does not exist (ENOENT)")
        }
        if !isDirectory.boolValue { throw ConfigurationError(what, nil, "\(directory) is not a directory (ENOTDIR)") }
        if access(directory, W_OK) != 0 {
            throw ConfigurationError(what, nil, "cannot write in \(directory) (\(Errno(rawValue: errno)))")
        }
    }

    /// A file that can be created or replaced: not a directory, in a directory this user can write in.
    public static func file(_ path: String, for what: String) throws(ConfigurationError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ConfigurationError(what, nil, "\(path) is a directory (EISDIR)")
        }
        let parent = (path as NSString).deletingLastPathComponent
        try directory(parent.isEmpty ? "." : parent, for: what)
    }
}
