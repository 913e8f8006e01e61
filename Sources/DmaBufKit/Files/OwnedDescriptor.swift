import DmaBufKernel

/// The single owner of one file descriptor. Closing is explicit (`close()`, which reports
/// errors) or, as a fallback, happens when the owner goes away.
public struct OwnedDescriptor: ~Copyable, Sendable {
    public let kernel: any Kernel
    private let origin: String
    private let madeBy: StaticString
    private var number: FileDescriptorNumber?

    public init(_ number: FileDescriptorNumber, kernel: any Kernel, path: String) {
        self.number = number
        self.kernel = kernel
        self.origin = path
        self.madeBy = ""
    }

    /// For descriptors made by an operation on another node (`what` "dma-buf from" and the heap's
    /// path): the description is only composed when shown, not on every allocation.
    public init(_ number: FileDescriptorNumber, kernel: any Kernel, madeBy what: StaticString, of origin: String) {
        self.number = number
        self.kernel = kernel
        self.origin = origin
        self.madeBy = what
    }

    /// The path or description shown in errors: the node it was opened from, or what made it.
    public var path: String { madeBy.utf8CodeUnitCount == 0 ? origin : "\(madeBy) \(origin)" }

    /// The descriptor, valid for as long as this owner lives.
    public var fd: FileDescriptorNumber { number! }

    /// Closes the descriptor, reporting the kernel's answer.
    public consuming func close() throws(KernelError) {
        guard let fd = number else { return }
        number = nil
        do { try kernel.close(fd) } catch { throw error.at(path) }
    }

    /// Closes now and leaves this owner empty: for an owner inside a type with a deinit, which
    /// cannot give up its parts one by one.
    public mutating func closeNow() throws(KernelError) {
        guard let fd = number else { return }
        number = nil
        do { try kernel.close(fd) } catch { throw error.at(path) }
    }

    /// Gives up ownership without closing: the caller now owns the number.
    public consuming func release() -> FileDescriptorNumber {
        let fd = number!
        number = nil
        return fd
    }

    /// Runs a kernel operation on this descriptor, attaching the path to any error.
    @inline(__always)
    public func perform<T>(_ body: (any Kernel, FileDescriptorNumber) throws(KernelError) -> T) throws(KernelError) -> T
    {
        do { return try body(kernel, fd) } catch { throw error.at(path) }
    }

    deinit {
        // Best effort: an owner dropped without close() still must not leak the fd.
        if let number { try? kernel.close(number) }
    }
}

extension Kernel {
    /// Opens `path` and returns its owner.
    public func openOwned(_ path: String, flags: OpenFlags) throws(KernelError) -> OwnedDescriptor {
        OwnedDescriptor(try open(path, flags: flags), kernel: self, path: path)
    }

    /// Maps `length` bytes of `fd` for the duration of `body`.
    public func withMapping<R>(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, offset: UInt64 = 0,
        _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) throws -> R {
        let base = try mmap(fd, length: length, protection: protection, shared: true, offset: offset)
        defer { try? munmap(base, length: length) }
        return try body(UnsafeMutableRawBufferPointer(start: base, count: length))
    }
}
