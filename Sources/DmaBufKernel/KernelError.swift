/// The one error DmaBufKit throws for anything the kernel (real or simulated) refused,
/// or that the library refused before asking the kernel.
///
/// It always names the operation (an ioctl or syscall name such as `DMA_HEAP_IOCTL_ALLOC`),
/// the errno, and where known the path of the node or object involved; `reason` explains
/// the failure in the user's terms when the library can tell why.
public struct KernelError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Errno
    public var path: String?
    public var reason: String?

    public init(_ operation: String, _ errno: Errno, path: String? = nil, reason: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.path = path
        self.reason = reason
    }

    /// The same error with a path attached, unless it already has one.
    public func at(_ path: String) -> KernelError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }

    /// The same error with an explanation attached, unless it already has one.
    public func explained(_ reason: String?) -> KernelError {
        var copy = self
        if copy.reason == nil { copy.reason = reason }
        return copy
    }

    public var description: String {
        var text = operation
        if let path { text += " on \(path)" }
        text += " failed: \(errno)"
        if let reason { text += ": \(reason)" }
        return text
    }
}
