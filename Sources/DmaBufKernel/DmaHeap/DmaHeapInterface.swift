/// dma-heap (drivers/dma-buf/dma-heap.c): one character device per heap under
/// `/dev/dma_heap`, each allocating dma-bufs from its own memory (system, CMA, …).
public protocol DmaHeapInterface: AnyObject {
    /// DMA_HEAP_IOCTL_ALLOC. `fdField` is the request's out-field on entry (must be 0).
    func dmaHeapAllocate(
        heap: FileDescriptorNumber, length: UInt64, fdFlags: UInt32, heapFlags: UInt64,
        fdField: UInt32
    ) throws(KernelError) -> FileDescriptorNumber
}

extension KernelPaths {
    public static let dmaHeapDirectory = "/dev/dma_heap"
}

extension KernelPaths {
    /// `CmaTotal` and `CmaFree` (kB): the contiguous memory areas the CMA heap allocates from.
    public static let memoryInfo = "/proc/meminfo"
}
