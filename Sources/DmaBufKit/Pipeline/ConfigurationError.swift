import DmaBufKernel

/// A value a user gave (a flag or a scenario file) that no run can be made of: out of range,
/// the wrong type, an unknown key, or in conflict with another setting. Found before anything
/// is opened; the CLIs exit 64 on it.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The setting, as the user spells it (`frames`, `expect.min-fps`, `--size`).
    public var field: String
    /// The value given, as text; nil for a missing or unknown key.
    public var value: String?
    /// What is wrong, and what would be right.
    public var problem: String
    /// Where it was given: a scenario file and its line (1-based), when it came from one.
    public var file: String?
    public var line: Int?

    public init(_ field: String, _ value: String? = nil, _ problem: String, file: String? = nil, line: Int? = nil) {
        (self.field, self.value, self.problem, self.file, self.line) = (field, value, problem, file, line)
    }

    /// The same error placed in a file (and line, when not already known).
    public func at(file: String, line: Int?) -> ConfigurationError {
        var copy = self
        copy.file = file
        if copy.line == nil { copy.line = line }
        return copy
    }

    public var description: String {
        var text = ""
        if let file { text += line.map { "\(file):\($0): " } ?? "\(file): " }
        text += field
        if let value { text += " \(value)" }
        return text + ": " + problem
    }
}
