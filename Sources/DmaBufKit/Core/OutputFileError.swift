import DmaBufKernel

/// A file or picture the tools write (a file sink's frames, a PNG dump) that could not be
/// written: the step, the file, the errno when the system gave one, and what is left behind.
public struct OutputFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The step that failed (`create`, `write`, `rename`, `png_image_write_to_file`).
    public var operation: String
    public var path: String
    public var errno: Errno?
    public var problem: String

    public init(_ operation: String, path: String, errno: Errno? = nil, _ problem: String) {
        (self.operation, self.path, self.errno, self.problem) = (operation, path, errno, problem)
    }

    public var description: String {
        "\(operation) \(path) failed" + (errno.map { ": \($0)" } ?? "") + ": \(problem)"
    }
}
