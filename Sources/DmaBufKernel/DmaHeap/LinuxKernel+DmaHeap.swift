internal import CDmaBuf

/// dma-heap: `DMA_HEAP_IOCTL_ALLOC` on a `/dev/dma_heap/*` node.
extension LinuxKernel {
    public func dmaHeapAllocate(
        heap: FileDescriptorNumber, length: UInt64, fdFlags: UInt32, heapFlags: UInt64, fdField: UInt32
    ) throws(KernelError) -> FileDescriptorNumber {
        try newFD("DMA_HEAP_IOCTL_ALLOC") {
            cdmabuf_dma_heap_alloc(heap.rawValue, length, fdFlags, heapFlags, fdField)
        }
    }
}
