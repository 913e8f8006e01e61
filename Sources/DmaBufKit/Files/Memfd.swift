import DmaBufKernel

/// An anonymous shared-memory file (`memfd_create`), the backing store udmabuf turns into a dma-buf.
public struct Memfd: ~Copyable, Sendable {
    public let descriptor: OwnedDescriptor
    public let length: Int

    /// Creates a memfd of `length` bytes and applies `seals`. The default seals it the way
    /// udmabuf needs: `F_SEAL_SHRINK` (pages cannot vanish) and no `F_SEAL_WRITE`.
    public init(kernel: any Kernel, name: String, length: Int, seals: Seals = [.shrink]) throws(KernelError) {
        try validateLength(length, operation: "memfd_create", path: "memfd:\(name)", kernel: kernel)
        let fd = try kernel.memfdCreate(name: name, flags: [.closeOnExec, .allowSealing])
        let owner = OwnedDescriptor(fd, kernel: kernel, path: "memfd:\(name)")
        try owner.perform { kernel, fd throws(KernelError) in
            try kernel.truncate(fd, length: UInt64(length))
            if !seals.isEmpty { try kernel.addSeals(fd, seals) }
        }
        descriptor = owner
        self.length = length
    }

    public var fd: FileDescriptorNumber { descriptor.fd }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    public func seals() throws(KernelError) -> Seals {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.seals(fd) }
    }

    public func addSeals(_ seals: Seals) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.addSeals(fd, seals) }
    }

    /// A range of this memfd for `UdmabufDevice.create(ranges:)`.
    public func range(offset: Int, size: Int) -> UdmabufItem {
        UdmabufItem(memfd: fd, offset: UInt64(clamping: offset), size: UInt64(clamping: size))
    }

    /// Maps the memfd shared and read-write for `body` (the CPU's own view of the pages).
    public func withMapping<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        let length = self.length
        do {
            return try descriptor.kernel.withMapping(fd, length: length, protection: [.read, .write], body)
        } catch let error as KernelError { throw error.at(descriptor.path) }
    }
}
