#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A Linux errno value, named the way the kernel sources name it.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = Errno(rawValue: 1)
    public static let ENOENT = Errno(rawValue: 2)
    public static let EINTR = Errno(rawValue: 4)
    public static let EIO = Errno(rawValue: 5)
    public static let ENXIO = Errno(rawValue: 6)
    public static let EBADF = Errno(rawValue: 9)
    public static let EAGAIN = Errno(rawValue: 11)
    public static let ENOMEM = Errno(rawValue: 12)
    public static let EACCES = Errno(rawValue: 13)
    public static let EFAULT = Errno(rawValue: 14)
    public static let EBUSY = Errno(rawValue: 16)
    public static let ENODEV = Errno(rawValue: 19)
    public static let ENOTDIR = Errno(rawValue: 20)
    public static let EISDIR = Errno(rawValue: 21)
    public static let EINVAL = Errno(rawValue: 22)
    public static let EMFILE = Errno(rawValue: 24)
    public static let ENOTTY = Errno(rawValue: 25)
    public static let ENOSPC = Errno(rawValue: 28)
    public static let EROFS = Errno(rawValue: 30)
    public static let EPIPE = Errno(rawValue: 32)
    public static let ERANGE = Errno(rawValue: 34)
    public static let ENOSYS = Errno(rawValue: 38)
    /// vb2: the queue takes buffers only inside a media request (`requires_requests`).
    public static let EBADR = Errno(rawValue: 53)
    /// V4L2: the connector has no such data (DV timings on a webcam input, …).
    public static let ENODATA = Errno(rawValue: 61)
    public static let ETIME = Errno(rawValue: 62)
    public static let EOVERFLOW = Errno(rawValue: 75)
    public static let EBADFD = Errno(rawValue: 77)
    public static let EOPNOTSUPP = Errno(rawValue: 95)
    public static let ENOBUFS = Errno(rawValue: 105)
    public static let ETIMEDOUT = Errno(rawValue: 110)

    private static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 6: "ENXIO", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
        13: "EACCES", 14: "EFAULT", 16: "EBUSY", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 24: "EMFILE",
        25: "ENOTTY", 28: "ENOSPC", 30: "EROFS", 32: "EPIPE", 34: "ERANGE", 38: "ENOSYS", 53: "EBADR", 61: "ENODATA",
        62: "ETIME", 75: "EOVERFLOW",
        77: "EBADFD",
        95: "EOPNOTSUPP", 105: "ENOBUFS", 110: "ETIMEDOUT",
    ]

    /// The symbolic name, e.g. `EINVAL`, or `errno N` for one we do not name.
    public var name: String { Self.names[rawValue] ?? "errno \(rawValue)" }

    /// The C library's message, e.g. `Invalid argument`.
    public var message: String { String(cString: strerror(rawValue)) }

    public var description: String { "\(name) (\(message))" }
}
