import DmaBufKernel

/// Which way the CPU (or a fence) touches a dma-buf: picks the `DMA_BUF_SYNC_*` direction.
public enum DmaBufAccess: String, Sendable, CaseIterable, Codable {
    case read, write, readWrite

    @inlinable var syncFlags: DmaBufSyncFlags {
        switch self {
        case .read: .read
        case .write: .write
        case .readWrite: .readWrite
        }
    }

    var protection: MemoryProtection {
        switch self {
        case .read: .read
        case .write: .write
        case .readWrite: [.read, .write]
        }
    }
}

/// A dma-buf: a file descriptor for memory shared between devices and the CPU.
/// The owner closes it; the memory lives on while any importer or mapping holds it.
public struct DmaBuf: ~Copyable, Sendable {
    public let descriptor: OwnedDescriptor
    /// The buffer's size in bytes, as the exporter reports it (page-rounded).
    public let length: Int

    public init(_ descriptor: consuming OwnedDescriptor, length: Int) {
        self.descriptor = descriptor
        self.length = length
    }

    public var fd: FileDescriptorNumber { descriptor.fd }
    public var kernel: any Kernel { descriptor.kernel }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    /// Gives up ownership without closing: the caller now owns the number.
    public consuming func release() -> FileDescriptorNumber { descriptor.release() }

    /// Sets the debug name shown in fdinfo and debugfs (`DMA_BUF_SET_NAME_B`; at most 31 bytes).
    public func setName(_ name: String) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in
            do throws(KernelError) { try kernel.dmaBufSetName(fd, name) } catch {
                throw error.explained(
                    error.errno == .EINVAL && name.utf8.count >= dmaBufNameCapacity
                        ? "name is \(name.utf8.count) bytes; the kernel keeps at most \(dmaBufNameCapacity - 1)" : nil)
            }
        }
    }

    /// What `/proc/self/fdinfo` says about this buffer.
    public func info() throws(KernelError) -> DmaBufInfo {
        let text = try descriptor.perform { kernel, fd throws(KernelError) in try kernel.fdinfo(fd) }
        guard let info = DmaBufInfo(fdinfo: text) else {
            throw KernelError(
                "read fdinfo", .EINVAL, path: descriptor.path, reason: "not a dma-buf: no size/exp_name lines")
        }
        return info
    }

    /// Maps the buffer for `body`; use the mapping's `read`/`write`/`readWrite` to access it.
    public func withMapping<R>(
        _ protection: MemoryProtection = [.read, .write], _ body: (borrowing DmaBufMapping) throws -> R
    ) throws -> R {
        let length = self.length
        let kernel = self.kernel
        let fd = self.fd
        let path = descriptor.path
        let base: UnsafeMutableRawPointer
        do { base = try kernel.mmap(fd, length: length, protection: protection, shared: true, offset: 0) } catch {
            throw error.at(path)
        }
        let mapping = DmaBufMapping(kernel: kernel, fd: fd, path: path, base: base, length: length)
        return try body(mapping)
    }

    /// Maps the buffer and runs `body` between `DMA_BUF_SYNC_START` and `DMA_BUF_SYNC_END`.
    @discardableResult
    public func read<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try withMapping(.read) { try $0.read(body) }
    }

    @discardableResult
    public func write<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        try withMapping([.read, .write]) { try $0.write(body) }
    }

    @discardableResult
    public func readWrite<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        try withMapping([.read, .write]) { try $0.readWrite(body) }
    }

    /// A sync_file with the fences an access of this kind must wait for
    /// (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`, Linux 6.0+).
    public func exportSyncFile(for access: DmaBufAccess) throws(KernelError) -> SyncFile {
        let path = descriptor.path
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.dmaBufExportSyncFile(fd, flags: access.syncFlags)
        }
        return SyncFile(OwnedDescriptor(fd, kernel: kernel, path: "sync_file exported from \(path)"))
    }

    /// Adds a sync_file's fences to this buffer as a reader or writer (`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`).
    public func importSyncFile(_ syncFile: borrowing SyncFile, as access: DmaBufAccess) throws(KernelError) {
        let sync = syncFile.fd
        try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.dmaBufImportSyncFile(fd, flags: access.syncFlags, syncFile: sync)
        }
    }
}

/// A CPU mapping of a dma-buf, valid inside `DmaBuf.withMapping`. Every access is bracketed
/// by `DMA_BUF_IOCTL_SYNC` start and end, and the end is issued even when the body throws.
public struct DmaBufMapping: ~Copyable {
    @usableFromInline let kernel: any Kernel
    /// The same kernel when it is the real one: the SYNC pair around every access then calls
    /// it directly, not through the interface's witness table (measured in `dmabuf-bench`'s
    /// layer rows).
    @usableFromInline let linux: LinuxKernel?
    @usableFromInline let fd: FileDescriptorNumber
    @usableFromInline let path: String
    @usableFromInline let base: UnsafeMutableRawPointer
    public let length: Int

    init(kernel: any Kernel, fd: FileDescriptorNumber, path: String, base: UnsafeMutableRawPointer, length: Int) {
        self.kernel = kernel
        self.linux = kernel as? LinuxKernel
        self.fd = fd
        self.path = path
        self.base = base
        self.length = length
    }

    @discardableResult @inlinable
    public func read<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try access(.read) { try body(UnsafeRawBufferPointer($0)) }
    }

    @discardableResult @inlinable
    public func write<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        try access(.write, body)
    }

    @discardableResult @inlinable
    public func readWrite<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        try access(.readWrite, body)
    }

    // Inlinable so that it is specialized for the caller's `R` and body.
    @inlinable
    func access<R>(_ access: DmaBufAccess, _ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        do { try sync(access.syncFlags.union(.start)) } catch { throw error.at(path) }
        let result: R
        do {
            result = try body(UnsafeMutableRawBufferPointer(start: base, count: length))
        } catch {
            // The body's error is the one worth reporting; the end still has to happen.
            try? sync(access.syncFlags.union(.end))
            throw error
        }
        do { try sync(access.syncFlags.union(.end)) } catch { throw error.at(path) }
        return result
    }

    @inlinable
    func sync(_ flags: DmaBufSyncFlags) throws(KernelError) {
        if let linux { try linux.dmaBufSync(fd, flags: flags) } else { try kernel.dmaBufSync(fd, flags: flags) }
    }

    deinit { try? kernel.munmap(base, length: length) }
}

@available(*, unavailable, message: "a mapping is one borrower's view of the memory")
extension DmaBufMapping: Sendable {}
