import DmaBufKit
import Testing

/// Interfaces some kernels have and others do not (6.1 has none of these, 6.12 all three).
/// Each case tries the call: where the kernel answers it as unknown, that answer must be the one
/// that kernel gives for an unknown call, and nothing may have changed; where it works, its
/// effect is checked. The test says which it found; it never reads the release. Each runs in
/// its subsystem's shared list (V4L2Cases, DmaBufCases, DRMCases).
enum NewerInterfaceCases {
    /// 6.12: vb2_core_remove_bufs (videobuf2-core.c:1726 (6.12)): EINVAL past what the queue holds or
    /// for a hole, EBUSY for a queued buffer; CREATE_BUFS then refills the lowest free run.
    /// 6.1: no such ioctl (v4l2-ioctl.c (6.1) __video_do_ioctl: ENOTTY), and REQBUFS reports no
    /// V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS.
    static func removeBuffersFreesWhatItNames(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let format = try device.format(.videoCapture)
            var queue = try V4L2Queue(device: device, type: .videoCapture, memory: .mmap, count: 4)
            let advertised = queue.capabilities.contains(.removeBuffers)
            do {
                try queue.removeBuffers(from: BufferIndex(rawValue: 1), count: 2)
                print("VIDIOC_REMOVE_BUFS: present")
                #expect(advertised, "REQBUFS reports V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS where the ioctl works")
                #expect(queue.indices.map(\.rawValue) == [0, 3])
                expectKernelError(.EINVAL) { _ = try queue.info(BufferIndex(rawValue: 1)) }
                #expect(try queue.info(BufferIndex(rawValue: 3)).index == 3)
                expectKernelError(.EINVAL) { try queue.removeBuffers(from: BufferIndex(rawValue: 1), count: 1) }
                expectKernelError(.EINVAL) { try queue.removeBuffers(from: BufferIndex(rawValue: 0), count: 3) }
                _ = try queue.enqueue(BufferIndex(rawValue: 0))
                expectKernelError(.EBUSY) { try queue.removeBuffers(from: BufferIndex(rawValue: 0), count: 1) }
                let refilled = try queue.createBuffers(2, format: format)
                #expect(refilled.map(\.rawValue) == [1, 2], "CREATE_BUFS fills the hole REMOVE_BUFS left")
                #expect((queue.maximumBuffers ?? 0) >= 32, "CREATE_BUFS reports max_num_buffers")
            } catch let error as KernelError where error.errno == .ENOTTY {
                print("VIDIOC_REMOVE_BUFS: not in this kernel (ENOTTY)")
                #expect(!advertised, "no REMOVE_BUFS capability where the ioctl is unknown")
                #expect(queue.indices.map(\.rawValue) == [0, 1, 2, 3])
                #expect(try queue.info(BufferIndex(rawValue: 1)).index == 1, "nothing was removed")
                _ = try queue.createBuffers(1, format: format)
                #expect(queue.maximumBuffers == nil, "no max_num_buffers without V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS")
            }
            try queue.release()
            try device.close()
        }
    }

    /// 6.12: sync_file_ioctl_set_deadline (sync_file.c:350 (6.12)) passes the hint on; 6.1's
    /// sync_file_ioctl knows only MERGE and FILE_INFO (sync_file.c:363 (6.1): ENOTTY). Either
    /// way a dma-buf is not a sync_file (dma_buf_ioctl default: ENOTTY).
    static func setDeadlineIsAcceptedOrUnknown(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let timeline = try SoftwareTimeline(kernel: kernel)
            let fence = try timeline.fence(at: 1)
            do {
                try fence.setDeadline(after: .milliseconds(16))
                print("SYNC_IOC_SET_DEADLINE: present")
                #expect(try fence.status() == .active, "a deadline is a hint: the fence stays pending")
                try timeline.advance()
                #expect(try fence.wait(timeout: .seconds(1)))
                try fence.setDeadline(after: .zero)
            } catch let error as KernelError where error.errno == .ENOTTY {
                print("SYNC_IOC_SET_DEADLINE: not in this kernel (ENOTTY)")
                #expect(try fence.status() == .active)
            }
            let buffer = try DmaHeap("system", kernel: kernel).allocate(length: kernel.pageSize)
            expectKernelError(.ENOTTY) {
                try kernel.syncFileSetDeadline(buffer.fd, deadlineNanoseconds: 0)
            }
            try buffer.close()
            try fence.close()
            try timeline.close()
        }
    }

    /// 6.12: drm_mode_closefb_ioctl (drm_framebuffer.c:484 (6.12)): the framebuffer leaves the
    /// file (RMFB: ENOENT) but the plane keeps showing it. 6.1: drm_ioctl answers a core ioctl
    /// number past its table with EINVAL (drm_ioctl.c:846 (6.1)); the consumed owner then
    /// removes the framebuffer (RMFB), which turns the plane off, as RMFB always did.
    static func closeFramebufferKeepsAShownFramebuffer(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let vkms = try DRMDevice(driver: "vkms", kernel: kernel)
            let pipe = try DisplayPipe(device: vkms)
            let width = Int(pipe.mode.hdisplay), height = Int(pipe.mode.vdisplay)
            let buffer = try vkms.createDumbBuffer(width: width, height: height)
            let framebuffer = try DRMCases.xrgbFramebuffer(
                vkms, buffer, width: width, height: height, pitch: buffer.pitch!)
            let id = framebuffer.id
            try pipe.show(framebuffer, on: vkms).close()
            do {
                try framebuffer.close()
                print("DRM_IOCTL_MODE_CLOSEFB: present")
                #expect(try kernel.drmPlane(vkms.fd, pipe.plane).framebuffer == id, "the plane still shows it")
                expectKernelError(.ENOENT) { try kernel.drmRemoveFramebuffer(vkms.fd, id) }
            } catch let error as KernelError where error.errno == .EINVAL {
                print("DRM_IOCTL_MODE_CLOSEFB: not in this kernel (EINVAL)")
                #expect(try kernel.drmPlane(vkms.fd, pipe.plane).framebuffer == nil, "RMFB turned the plane off")
                expectKernelError(.ENOENT) { try kernel.drmRemoveFramebuffer(vkms.fd, id) }
            }
            try pipe.disable(on: vkms)
            #expect(try kernel.drmPlane(vkms.fd, pipe.plane).framebuffer == nil)
            try buffer.close()
            try vkms.close()
        }
    }
}
