/// A pipeline the devices cannot carry as configured (a format a plane cannot scan out, a
/// node of the wrong kind, no writeback to verify with), or a stage that broke its promise
/// mid-run (a writeback that never completed). The kernel calls themselves fail with
/// `KernelError`; this is the pipeline's own verdict, with the device it concerns.
public struct PipelineError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The device node or file the problem is about, when there is one.
    public var path: String?
    /// What is wrong, and what would work instead.
    public var problem: String

    public init(path: String? = nil, _ problem: String) {
        (self.problem, self.path) = (problem, path)
    }

    public var description: String { path.map { "pipeline on \($0): \(problem)" } ?? "pipeline: \(problem)" }
}
