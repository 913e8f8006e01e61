#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A Linux errno value, named the way the kernel sources name it.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }

    @inlinable public static var EPERM: Errno { Errno(rawValue: 1) }
    @inlinable public static var ENOENT: Errno { Errno(rawValue: 2) }
    @inlinable public static var EINTR: Errno { Errno(rawValue: 4) }
    @inlinable public static var EIO: Errno { Errno(rawValue: 5) }
    @inlinable public static var ENXIO: Errno { Errno(rawValue: 6) }
    @inlinable public static var EBADF: Errno { Errno(rawValue: 9) }
    @inlinable public static var EAGAIN: Errno { Errno(rawValue: 11) }
    @inlinable public static var ENOMEM: Errno { Errno(rawValue: 12) }
    @inlinable public static var EACCES: Errno { Errno(rawValue: 13) }
    @inlinable public static var EFAULT: Errno { Errno(rawValue: 14) }
    @inlinable public static var EBUSY: Errno { Errno(rawValue: 16) }
    @inlinable public static var ENODEV: Errno { Errno(rawValue: 19) }
    @inlinable public static var ENOTDIR: Errno { Errno(rawValue: 20) }
    @inlinable public static var EISDIR: Errno { Errno(rawValue: 21) }
    @inlinable public static var EINVAL: Errno { Errno(rawValue: 22) }
    @inlinable public static var EMFILE: Errno { Errno(rawValue: 24) }
    @inlinable public static var ENOTTY: Errno { Errno(rawValue: 25) }
    @inlinable public static var ENOSPC: Errno { Errno(rawValue: 28) }
    @inlinable public static var EROFS: Errno { Errno(rawValue: 30) }
    @inlinable public static var EPIPE: Errno { Errno(rawValue: 32) }
    @inlinable public static var ERANGE: Errno { Errno(rawValue: 34) }
    @inlinable public static var ENOSYS: Errno { Errno(rawValue: 38) }
    /// vb2: the queue takes buffers only inside a media request (`requires_requests`).
    @inlinable public static var EBADR: Errno { Errno(rawValue: 53) }
    /// V4L2: the connector has no such data (DV timings on a webcam input, …).
    @inlinable public static var ENODATA: Errno { Errno(rawValue: 61) }
    @inlinable public static var ETIME: Errno { Errno(rawValue: 62) }
    @inlinable public static var EOVERFLOW: Errno { Errno(rawValue: 75) }
    @inlinable public static var EBADFD: Errno { Errno(rawValue: 77) }
    @inlinable public static var EOPNOTSUPP: Errno { Errno(rawValue: 95) }
    @inlinable public static var ENOBUFS: Errno { Errno(rawValue: 105) }
    @inlinable public static var ETIMEDOUT: Errno { Errno(rawValue: 110) }

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
