import DmaBufKit
import DmaBufSimulation
import Testing

@Suite("dma-buf API on the simulated kernel")
struct SimulatedDmaBufTests {
    @Test(arguments: SimulatedKernel.Version.allCases, DmaBufCases.shared)
    func shared(_ version: SimulatedKernel.Version, _ kernelCase: KernelCase) throws {
        try kernelCase.run(on: SimulatedKernel(version: version))
    }

    @Test("bad lengths are refused before any ioctl", arguments: [0, -1, -4096, Int.max])
    func badLengthsNeverReachTheKernel(_ length: Int) throws {
        let kernel = SimulatedKernel()
        let heap = try DmaHeap("system", kernel: kernel)
        let error = expectKernelError(length > 0 ? .ENOMEM : .EINVAL) { _ = try heap.allocate(length: length) }
        #expect(error?.operation == "DMA_HEAP_IOCTL_ALLOC")
        #expect(error?.path == "/dev/dma_heap/system")
        #expect(error?.reason?.contains("no ioctl issued") == true)
        #expect(kernel.ioctlLog.isEmpty)
        let device = try UdmabufDevice(kernel: kernel)
        let memfd = try Memfd(kernel: kernel, name: "m", length: 4096)
        expectKernelError(length > 0 ? .ENOMEM : .EINVAL) { _ = try device.create(from: memfd, size: length) }
        #expect(kernel.ioctlLog.isEmpty)
    }

    @Test func cpuAccessEndsSyncEvenWhenTheBodyThrows() throws {
        struct Boom: Error {}
        let kernel = SimulatedKernel()
        let buffer = try DmaHeap("system", kernel: kernel).allocate(length: 4096)
        #expect(throws: Boom.self) { try buffer.readWrite { _ in throw Boom() } }
        #expect(
            kernel.ioctlLog == [
                "DMA_HEAP_IOCTL_ALLOC", "DMA_BUF_IOCTL_SYNC START|READ|WRITE", "DMA_BUF_IOCTL_SYNC END|READ|WRITE",
            ])
        #expect(kernel.mappingCount == 0)
    }

    @Test func cmaCapacityRunsOutAndComesBack() throws {
        var configuration = SimulatedKernel.Configuration()
        configuration.reservedHeapCapacity = 8 << 20
        let kernel = SimulatedKernel(configuration)
        let heap = try DmaHeap("reserved", kernel: kernel)
        let first = try heap.allocate(length: 6 << 20)
        let error = expectKernelError(.ENOMEM) { _ = try heap.allocate(length: 4 << 20) }
        #expect(error?.reason?.contains("could not provide") == true)
        try first.close()
        #expect(kernel.heapBytesInUse("reserved") == 0)
        _ = try heap.allocate(length: 8 << 20)
    }

    @Test func aMappingKeepsTheBufferAliveAfterItsFdCloses() throws {
        let kernel = SimulatedKernel()
        let heap = try kernel.open("/dev/dma_heap/reserved", flags: [.closeOnExec])
        let fd = try kernel.dmaHeapAllocate(heap: heap, length: 1 << 20, fdFlags: 0o2000002, heapFlags: 0, fdField: 0)
        let address = try kernel.mmap(fd, length: 1 << 20, protection: [.read, .write], shared: true, offset: 0)
        try kernel.close(fd)
        #expect(kernel.heapBytesInUse("reserved") == 1 << 20)
        address.storeBytes(of: 7, as: UInt8.self)
        try kernel.munmap(address, length: 1 << 20)
        #expect(kernel.heapBytesInUse("reserved") == 0)
        try kernel.close(heap)
        #expect(kernel.openDescriptorCount == 0)
    }

    @Test func droppedOwnersCloseTheirDescriptors() throws {
        let kernel = SimulatedKernel()
        do {
            let heap = try DmaHeap("system", kernel: kernel)
            _ = try heap.allocate(length: 4096)
            #expect(kernel.openDescriptorCount >= 1)
        }
        #expect(kernel.openDescriptorCount == 0)
        #expect(kernel.heapBytesInUse("system") == 0)
    }

    @Test func releasedDescriptorsAreTheCallersToClose() throws {
        let kernel = SimulatedKernel()
        let owner = try kernel.openOwned(KernelPaths.udmabuf, flags: [.readWrite])
        let fd = owner.release()
        #expect(kernel.openDescriptorCount == 1)
        try kernel.close(fd)
        #expect(kernel.openDescriptorCount == 0)
    }

    @Test func heapsAreEnumerated() throws {
        #expect(try DmaHeap.names(kernel: SimulatedKernel()) == ["reserved", "system"])
        var none = SimulatedKernel.Configuration()
        none.heaps = []
        #expect(try DmaHeap.names(kernel: SimulatedKernel(none)) == [])
    }

    @Test func missingAndForbiddenNodesExplainThemselves() throws {
        var configuration = SimulatedKernel.Configuration()
        configuration.udmabuf = false
        configuration.deniedPaths = ["/dev/dma_heap/system"]
        let kernel = SimulatedKernel(configuration)
        let missing = expectKernelError(.ENOENT) { _ = try UdmabufDevice(kernel: kernel) }
        #expect(missing?.reason?.contains("CONFIG_UDMABUF") == true)
        let denied = expectKernelError(.EACCES) { _ = try DmaHeap("system", kernel: kernel) }
        #expect(denied?.path == "/dev/dma_heap/system")
        #expect(denied?.reason?.contains("udev rule") == true)
    }

    @Test func errorsReadWell() {
        let error = KernelError("UDMABUF_CREATE", .EBADFD, path: "/dev/udmabuf", reason: "fd 9 is not a memfd")
        #expect(
            error.description
                == "UDMABUF_CREATE on /dev/udmabuf failed: EBADFD (File descriptor in bad state): fd 9 is not a memfd")
    }
}

extension DeviceTests {
    @Suite("dma-buf API on the real kernel")
    struct DmaBufAPI {
        @Test(arguments: DmaBufCases.shared)
        func shared(_ kernelCase: KernelCase) throws { try kernelCase.run(on: LinuxKernel()) }
    }
}
