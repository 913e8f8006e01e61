import DmaBufKernel

/// A dma-buf heap, `/dev/dma_heap/<name>`: `system` (pages from anywhere) or a CMA area
/// (physically contiguous; named after the area, usually `reserved` or `linux,cma`).
public struct DmaHeap: ~Copyable, Sendable {
    public let name: String
    public let descriptor: OwnedDescriptor

    /// The heaps this kernel offers; empty when `/dev/dma_heap` does not exist.
    public static func names(kernel: any Kernel) throws(KernelError) -> [String] {
        do { return try kernel.listDirectory(KernelPaths.dmaHeapDirectory) } catch {
            if error.errno == .ENOENT { return [] }
            throw error
        }
    }

    public static func path(of name: String) -> String { "\(KernelPaths.dmaHeapDirectory)/\(name)" }

    public init(_ name: String, kernel: any Kernel) throws(KernelError) {
        self.name = name
        do { descriptor = try kernel.openOwned(Self.path(of: name), flags: [.readOnly, .closeOnExec]) } catch {
            if error.errno == .ENOENT, let found = try? Self.names(kernel: kernel), !found.isEmpty {
                throw error.explained("no heap is named \(name) (found: \(found.sorted().joined(separator: ", ")))")
            }
            throw error.explained(deviceOpenAdvice(error, node: Self.path(of: name)))
        }
    }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    /// Allocates a zero-filled buffer of at least `length` bytes (the kernel rounds up to pages).
    ///
    /// Zero, negative and larger-than-physical-memory lengths are refused here, before any ioctl.
    public func allocate(
        length: Int, fdFlags: OpenFlags = [.readWrite, .closeOnExec], heapFlags: UInt64 = 0,
        name debugName: String? = nil
    ) throws(KernelError) -> DmaBuf {
        let path = descriptor.path
        try validateLength(length, operation: "DMA_HEAP_IOCTL_ALLOC", path: path, kernel: descriptor.kernel)
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            do throws(KernelError) {
                return try kernel.dmaHeapAllocate(
                    heap: fd, length: UInt64(length), fdFlags: UInt32(bitPattern: fdFlags.rawValue),
                    heapFlags: heapFlags, fdField: 0)
            } catch {
                throw error.explained(
                    error.errno == .ENOMEM ? "heap '\(name)' could not provide \(length) bytes" : nil)
            }
        }
        let pageSize = descriptor.kernel.pageSize
        let buffer = DmaBuf(
            OwnedDescriptor(fd, kernel: descriptor.kernel, madeBy: "dma-buf from", of: path),
            length: (length + pageSize - 1) / pageSize * pageSize)
        if let debugName { try buffer.setName(debugName) }
        return buffer
    }
}
