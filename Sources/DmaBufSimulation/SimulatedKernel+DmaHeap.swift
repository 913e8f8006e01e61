import DmaBufKernel
import Foundation

/// dma-heap (drivers/dma-buf/dma-heap.c, heaps/system_heap.c, heaps/cma_heap.c)
extension SimulatedKernel {
    public func dmaHeapAllocate(
        heap: FileDescriptorNumber, length: UInt64, fdFlags: UInt32, heapFlags: UInt64, fdField: UInt32
    ) throws(KernelError) -> FileDescriptorNumber {
        let operation = "DMA_HEAP_IOCTL_ALLOC"
        record(operation)
        guard case .heap(let name) = try file(heap, operation).kind else { throw KernelError(operation, .ENOTTY) }
        if fdField != 0 { throw KernelError(operation, .EINVAL) }
        let validFDFlags = UInt32(O_CLOEXEC | O_ACCMODE)
        if fdFlags & ~validFDFlags != 0 { throw KernelError(operation, .EINVAL) }
        if heapFlags != 0 { throw KernelError(operation, .EINVAL) }
        let page = UInt64(pageSize)
        let aligned = (length &+ page &- 1) & ~(page - 1)  // PAGE_ALIGN, wrapping like the kernel's
        if aligned == 0 { throw KernelError(operation, .EINVAL) }
        let capacity = name == "system" ? configuration.physicalMemory : configuration.reservedHeapCapacity
        try locked { () throws(KernelError) in
            let used = heapUsage[name] ?? 0
            if aligned > capacity || used + aligned > capacity { throw KernelError(operation, .ENOMEM) }
            heapUsage[name] = used + aligned
        }
        let buffer = SimulatedDmaBuf(
            exporter: name, size: aligned,
            contiguousBytes: name == "system" ? Self.systemHeapFirstChunk(aligned, page: page) : aligned,
            writable: fdFlags & UInt32(O_ACCMODE) != UInt32(O_RDONLY),
            mmapRule: name == "system" ? .privateSinglePageOnly : .sharedOnly, charge: (name, aligned))
        do {
            return try install(
                .dmaBuf(buffer), label: "dmabuf:\(name)", closeOnExec: fdFlags & UInt32(O_CLOEXEC) != 0, size: aligned)
        } catch {
            locked { release(buffer) }
            throw error
        }
    }

    /// The system heap fills a buffer with the largest chunks first, of orders 8, 4 and 0
    /// (system_heap.c `orders[]`, 6.1 and 6.12): its first chunk is the largest that fits.
    static func systemHeapFirstChunk(_ size: UInt64, page: UInt64) -> UInt64 {
        [8, 4, 0].map { page << $0 }.first { $0 <= size } ?? size
    }
}
