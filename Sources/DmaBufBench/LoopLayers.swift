import CDmaBuf
import CLibDRM
import DmaBufKit

/// The Swift side of each loop once per layer it goes through, so that what each layer adds is
/// measured, not guessed: `shim` calls the C shim from Swift (the Swift-to-C call and the loop),
/// `LinuxKernel` the concrete kernel's methods (plus errno mapping and the value conversions),
/// `any Kernel` the same methods through the interface (plus witness calls and reference
/// counting of the existential); the typed API (the loop's own figure) adds the owners. Each
/// runs in the same alternation as the C reference, so every layer gets its own ratio to C.
/// Only on the real kernel: the shim is not the simulation.
struct LoopLayer {
    var name: String
    var body: (Int) throws -> Int64

    static let names = ["shim", "LinuxKernel", "any Kernel"]
}

extension LoopBenchmarks {
    /// The three lower layers of one loop, given each layer's round (`linux` is the concrete
    /// kernel, `any` the same object as the interface); none on the simulated kernel.
    func layers(
        shim: @escaping () throws(KernelError) -> Void,
        concrete: @escaping (LinuxKernel) throws(KernelError) -> Void,
        interface: @escaping (any Kernel) throws(KernelError) -> Void
    ) -> [LoopLayer] {
        guard let linux = kernel as? LinuxKernel else { return [] }
        let any: any Kernel = linux
        return [
            LoopLayer(name: "shim") { rounds in try timed { for _ in 0..<rounds { try shim() } } },
            LoopLayer(name: "LinuxKernel") { rounds in try timed { for _ in 0..<rounds { try concrete(linux) } } },
            LoopLayer(name: "any Kernel") { rounds in try timed { for _ in 0..<rounds { try interface(any) } } },
        ]
    }

    func heapLayers(heap: FileDescriptorNumber, bytes: Int) -> [LoopLayer] {
        let flags = UInt32(bitPattern: OpenFlags([.readWrite, .closeOnExec]).rawValue)
        func round(_ kernel: some Kernel) throws(KernelError) {
            try kernel.close(
                try kernel.dmaHeapAllocate(heap: heap, length: UInt64(bytes), fdFlags: flags, heapFlags: 0, fdField: 0))
        }
        return layers(
            shim: { () throws(KernelError) in
                let fd = try shimCall("DMA_HEAP_IOCTL_ALLOC") {
                    cdmabuf_dma_heap_alloc(heap.rawValue, UInt64(bytes), flags, 0, 0)
                }
                _ = try shimCall("close") { cdmabuf_close(fd) }
            },
            concrete: { linux throws(KernelError) in try round(linux) },
            interface: { kernel throws(KernelError) in
                try kernel.close(
                    try kernel.dmaHeapAllocate(
                        heap: heap, length: UInt64(bytes), fdFlags: flags, heapFlags: 0, fdField: 0))
            })
    }

    func udmabufLayers(device: FileDescriptorNumber, memfd: FileDescriptorNumber, bytes: Int) -> [LoopLayer] {
        layers(
            shim: { () throws(KernelError) in
                let fd = try shimCall("UDMABUF_CREATE") {
                    cdmabuf_udmabuf_create(
                        device.rawValue, UInt32(memfd.rawValue), UdmabufFlags.closeOnExec.rawValue, 0, UInt64(bytes))
                }
                _ = try shimCall("close") { cdmabuf_close(fd) }
            },
            concrete: { linux throws(KernelError) in
                try linux.close(
                    try linux.udmabufCreate(
                        device: device, memfd: memfd, flags: .closeOnExec, offset: 0, size: UInt64(bytes)))
            },
            interface: { kernel throws(KernelError) in
                try kernel.close(
                    try kernel.udmabufCreate(
                        device: device, memfd: memfd, flags: .closeOnExec, offset: 0, size: UInt64(bytes)))
            })
    }

    func syncLayers(buffer: FileDescriptorNumber) -> [LoopLayer] {
        let start = DmaBufSyncFlags([.start, .read, .write]), end = DmaBufSyncFlags([.end, .read, .write])
        return layers(
            shim: { () throws(KernelError) in
                _ = try shimCall("DMA_BUF_IOCTL_SYNC") { cdmabuf_dma_buf_sync(buffer.rawValue, start.rawValue) }
                _ = try shimCall("DMA_BUF_IOCTL_SYNC") { cdmabuf_dma_buf_sync(buffer.rawValue, end.rawValue) }
            },
            concrete: { linux throws(KernelError) in
                try linux.dmaBufSync(buffer, flags: start)
                try linux.dmaBufSync(buffer, flags: end)
            },
            interface: { kernel throws(KernelError) in
                try kernel.dmaBufSync(buffer, flags: start)
                try kernel.dmaBufSync(buffer, flags: end)
            })
    }

    func videoLayers(video: FileDescriptorNumber, type: V4L2BufferType, planes: Int, path: String) -> [LoopLayer] {
        func round(_ kernel: some Kernel) throws(KernelError) {
            let ready = try kernel.poll(video, events: .readable, timeoutMilliseconds: 5000)
            guard !ready.isEmpty,
                let buffer = try kernel.v4l2DequeueBuffer(video, type: type, memory: .mmap, planes: planes)
            else { throw KernelError("VIDIOC_DQBUF", .ETIMEDOUT, path: path, reason: "no frame within 5 s") }
            _ = try kernel.v4l2QueueBuffer(video, buffer)
        }
        return layers(
            shim: { () throws(KernelError) in
                var revents: Int16 = 0
                _ = try shimCall("poll") { cdmabuf_poll(video.rawValue, PollEvents.readable.rawValue, 5000, &revents) }
                var buffer = cdmabuf_v4l2_buffer()
                (buffer.type, buffer.memory, buffer.num_planes) = (
                    type.rawValue, V4L2Memory.mmap.rawValue, UInt32(planes)
                )
                _ = try shimCall("VIDIOC_DQBUF") { cdmabuf_v4l2_dqbuf(video.rawValue, &buffer) }
                _ = try shimCall("VIDIOC_QBUF") { cdmabuf_v4l2_qbuf(video.rawValue, &buffer) }
            },
            concrete: { linux throws(KernelError) in try round(linux) },
            interface: { kernel throws(KernelError) in
                let ready = try kernel.poll(video, events: .readable, timeoutMilliseconds: 5000)
                guard !ready.isEmpty,
                    let buffer = try kernel.v4l2DequeueBuffer(video, type: type, memory: .mmap, planes: planes)
                else { throw KernelError("VIDIOC_DQBUF", .ETIMEDOUT, path: path, reason: "no frame within 5 s") }
                _ = try kernel.v4l2QueueBuffer(video, buffer)
            })
    }

    func primeLayers(display: FileDescriptorNumber, dmaBuf: FileDescriptorNumber) -> [LoopLayer] {
        layers(
            shim: { () throws(KernelError) in
                // DmaBufKit's DRM layer calls libdrm, as the C reference does: libdrm is its shim.
                var handle: UInt32 = 0
                guard drmPrimeFDToHandle(display.rawValue, dmaBuf.rawValue, &handle) == 0,
                    drmCloseBufferHandle(display.rawValue, handle) == 0
                else { throw KernelError("DRM_IOCTL_PRIME_FD_TO_HANDLE", Errno(rawValue: errno)) }
            },
            concrete: { linux throws(KernelError) in
                try linux.drmGEMClose(display, try linux.drmPrimeFDToHandle(display, dmaBuf: dmaBuf))
            },
            interface: { kernel throws(KernelError) in
                try kernel.drmGEMClose(display, try kernel.drmPrimeFDToHandle(display, dmaBuf: dmaBuf))
            })
    }
}

/// A shim call's result, or its -errno as a `KernelError`.
@inline(__always)
func shimCall(_ operation: String, _ body: () -> Int32) throws(KernelError) -> Int32 {
    let result = body()
    if result < 0 { throw KernelError(operation, Errno(rawValue: -result)) }
    return result
}

#if canImport(Glibc)
    import Glibc
#endif
