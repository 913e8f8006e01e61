import DmaBufKit
import DmaBufSimulation
import Foundation
import Testing

/// Every public entry point answers a bad argument with a clear error, never a trap; the
/// simulation answers one with Linux's errno.
@Suite("Library arguments on the simulated kernel")
struct LibraryArgumentTests {
    @Test func videoQueueArguments() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let camera = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            expectKernelError(.EINVAL) {
                _ = try V4L2Queue(device: camera, type: .videoCapture, memory: .mmap, count: -1)
            }
            var queue = try V4L2Queue(device: camera, type: .videoCapture, memory: .mmap, count: 2)
            for plane in [-1, 1, 2, Int.max] {
                let error = expectKernelError(.EINVAL) { _ = try queue.export(BufferIndex(rawValue: 0), plane: plane) }
                #expect(error?.reason?.contains("plane \(plane)") == true, "\(String(describing: error))")
            }
            let format = try camera.format(.videoCapture)
            expectKernelError(.EINVAL) { _ = try queue.createBuffers(-1, format: format) }
            expectKernelError(.EINVAL) { _ = try queue.createBuffers(Int.max, format: format) }
            #expect(try queue.createBuffers(100, format: format).count == 30, "vb2 gives what is left of its 32")
            expectKernelError(.ENOBUFS) { _ = try queue.createBuffers(1, format: format) }
            try queue.release()
            try camera.close()
        }
    }

    /// vb2 clamps a REQBUFS count to VB2_MAX_FRAME (videobuf2-core.c:818 in 6.1) instead of failing.
    @Test func requestBuffersIsClampedAsVb2Does() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let camera = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let queue = try V4L2Queue(device: camera, type: .videoCapture, memory: .mmap, count: 100_000)
            #expect(queue.count == 32)
            try queue.release()
            try camera.close()
        }
    }

    @Test func dumbBufferArguments() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let vkms = try DRMDevice(driver: "vkms", kernel: kernel)
            for (width, height, bpp) in [(-1, 64, 32), (1 << 33, 64, 32), (64, Int.min, 32), (64, 64, -8)] {
                expectKernelError(.EINVAL) {
                    _ = try vkms.createDumbBuffer(width: width, height: height, bitsPerPixel: bpp)
                }
            }
            try vkms.close()
        }
    }

    @Test func udmabufArguments() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let device = try UdmabufDevice(kernel: kernel)
            let memfd = try Memfd(kernel: kernel, name: "arguments", length: 1 << 16)
            for (offset, size) in [(Int.min, nil), (-4096, nil), (1 << 17, nil), (0, -1), (Int.max, 4096)]
                as [(Int, Int?)]
            {
                expectKernelError(.EINVAL) { _ = try device.create(from: memfd, offset: offset, size: size) }
            }
            // A range that wraps past UInt64.max: Linux's shmem refuses it with EINVAL; so does the model.
            let wrapping = UdmabufItem(memfd: memfd.descriptor.fd, offset: UInt64.max - 4095, size: 8192)
            expectKernelError(.EINVAL) {
                _ = try kernel.udmabufCreate(
                    device: device.descriptor.fd, memfd: wrapping.memfd, flags: [], offset: wrapping.offset,
                    size: wrapping.size)
            }
            try memfd.close()
            try device.close()
        }
    }

    @Test func smallArguments() throws {
        #expect(FenceStatus(kernelStatus: .min) == .failed(Errno(rawValue: .max)))
        let kernel = SimulatedKernel()
        let heap = try DmaHeap("system", kernel: kernel)
        let buffer = try heap.allocate(length: 4096)
        expectKernelError(.EINVAL) { _ = try kernel.read(buffer.fd, maxLength: -1) }
        try buffer.close()
        // libdrm reads four entries: a request stays four wide whatever is assigned.
        var request = DRMFramebufferRequest(
            width: 64, height: 64, format: .xrgb8888, handles: [GEMHandle(rawValue: 1)], pitches: [256])
        request.handles = []
        request.pitches = [1, 2, 3, 4, 5, 6]
        request.offsets = [7]
        request.modifiers = [9]
        #expect(
            request.handles.map(\.rawValue) == [0, 0, 0, 0] && request.pitches == [1, 2, 3, 4]
                && request.offsets == [7, 0, 0, 0])
        #expect(request.modifiers == [9, 0, 0, 0])
    }

    @Test func frameConverterArguments() throws {
        let converter = try FrameConverter()
        var empty = V4L2Format(type: .videoCapture, width: 64, height: 64, pixelFormat: V4L2PixelFormat.rgb24)
        empty.planes = []
        expectError(FrameConversionError.self) { _ = try converter.rgb24([[0]], format: empty) }
        let huge = V4L2Format(type: .videoCapture, width: 40000, height: 40000, pixelFormat: .yuyv)
        expectError(FrameConversionError.self) { _ = try converter.rgb24([[0]], format: huge) }
        let zero = V4L2Format(type: .videoCapture, width: 0, height: 0, pixelFormat: .yuyv)
        expectError(FrameConversionError.self) { _ = try converter.rgb24([[]], format: zero) }
    }

    /// A bogus OUT_FENCE_PTR: Linux's put_user fails with EFAULT when the property is set; the
    /// model asks the host kernel the same question instead of writing through the pointer.
    @Test func atomicCommitWithABadFencePointerIsEFAULT() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let vkms = try DRMDevice(driver: "vkms", kernel: kernel)
            let pipe = try DisplayPipe(device: vkms)
            let ids = try kernel.drmObjectProperties(vkms.fd, pipe.crtc.object, type: .crtc).keys
            let outFence = try #require(try ids.first { try kernel.drmProperty(vkms.fd, $0).name == "OUT_FENCE_PTR" })
            for address: UInt64 in [8, 0xdead_0000, UInt64.max - 3] {
                expectKernelError(.EFAULT) {
                    try kernel.drmAtomicCommit(
                        vkms.fd, [DRMAtomicProperty(object: pipe.crtc.object, property: outFence, value: address)],
                        flags: DRMAtomicFlags.testOnly, userData: 0)
                }
            }
            try vkms.close()
        }
    }

    /// The model's ioctl log keeps the most recent entries only: a long run cannot grow it without end.
    @Test func theIoctlLogIsBounded() throws {
        let kernel = SimulatedKernel()
        let heap = try DmaHeap("system", kernel: kernel)
        let buffer = try heap.allocate(length: 4096)
        for _ in 0..<(SimulatedKernel.ioctlLogLimit * 2) { try kernel.dmaBufSync(buffer.fd, flags: [.start, .read]) }
        #expect(kernel.ioctlLog.count <= SimulatedKernel.ioctlLogLimit)
        #expect(kernel.ioctlLog.last == "DMA_BUF_IOCTL_SYNC START|READ")
        try buffer.close()
    }
}
