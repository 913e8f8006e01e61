import DmaBufKernel

extension ProbeReport {
    /// One interface newer than some kernels still in use, tried on this one.
    public struct InterfaceReport: Codable, Sendable, Equatable {
        /// The ioctl, e.g. `VIDIOC_REMOVE_BUFS`.
        public var name: String
        /// The Linux release that added it: context for the reader, never what decides.
        public var since: String
        /// The device or file it was tried on.
        public var path: String?
        /// `ok`: it worked; `missing`: this kernel does not have it (the errno says how it
        /// answered); `failed`: it is there but did not do what it says; `skipped`: nothing to try it on.
        public var status: ProbeStatus
        public var errno: String?
        public var detail: String

        /// It is there but a call failed for a reason other than being unknown.
        mutating func fail(_ error: KernelError) {
            (status, errno, detail) = (.failed, error.errno.name, error.description)
        }
    }
}

/// Interfaces that sharing pipelines use where the kernel has them, tried one by one: each is
/// called for real on a device of this machine and its effect checked, so "missing" means the
/// kernel answered the call as an unknown one, not that a version number said so.
extension Probe {
    func probeInterfaces() -> ProbeReport.Section<ProbeReport.InterfaceReport> {
        let items = [tryRemoveBuffers(), trySetDeadline(), tryCloseFramebuffer()]
        let status: ProbeStatus = items.contains { $0.status == .failed } ? .failed : .ok
        return .init(status: status, reason: nil, kernelOption: nil, items: items)
    }

    /// VIDIOC_REMOVE_BUFS (6.10) on the first capture or output node: two MMAP buffers, the
    /// second removed; then it must be gone (QUERYBUF EINVAL) and the first still there. The
    /// queue's `.removeBuffers` capability must agree with the try.
    func tryRemoveBuffers() -> ProbeReport.InterfaceReport {
        var item = ProbeReport.InterfaceReport(
            name: "VIDIOC_REMOVE_BUFS", since: "6.10", status: .skipped, detail: "no V4L2 capture or output node")
        for node in (try? V4L2Device.nodes(kernel: kernel)) ?? [] {
            guard let device = try? V4L2Device(path: node.path, kernel: kernel),
                let type = device.capability.streamingType,
                device.capability.deviceCaps.isDisjoint(with: [.videoMem2Mem, .videoMem2MemMultiplanar])
            else { continue }
            item.path = node.path
            do {
                var queue = try V4L2Queue(device: device, type: type, memory: .mmap, count: 2)
                let advertised = queue.capabilities.contains(.removeBuffers)
                do {
                    try queue.removeBuffers(from: BufferIndex(rawValue: 1), count: 1)
                    let gone = (try? queue.info(BufferIndex(rawValue: 1))) == nil
                    let kept = (try? queue.info(BufferIndex(rawValue: 0))) != nil
                    item.status = gone && kept && advertised ? .ok : .failed
                    item.detail =
                        gone && kept
                        ? "buffer 1 of 2 removed, buffer 0 kept"
                            + (advertised ? "" : "; but REQBUFS did not report V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS")
                        : "REMOVE_BUFS succeeded but QUERYBUF still finds buffer 1 (\(gone)) or lost buffer 0 (\(!kept))"
                } catch  where error.errno == .ENOTTY {
                    item.status = advertised ? .failed : .missing
                    item.errno = error.errno.name
                    item.detail =
                        advertised
                        ? "REQBUFS reports V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS, yet the ioctl is unknown (ENOTTY)"
                        : "not in this kernel: the ioctl is unknown (ENOTTY) and REQBUFS does not report the capability"
                }
                try queue.release()
            } catch {
                item.fail(error)
            }
            try? device.close()
            return item
        }
        return item
    }

    /// SYNC_IOC_SET_DEADLINE (6.3) on the sync_file exported by a page of the first heap that
    /// gives one (a signalled fence: the hint is accepted and changes nothing). Heaps this user
    /// may not open, or that cannot allocate, are the heaps section's findings, not this one's.
    func trySetDeadline() -> ProbeReport.InterfaceReport {
        var item = ProbeReport.InterfaceReport(
            name: "SYNC_IOC_SET_DEADLINE", since: "6.3", status: .skipped,
            detail: "no dma-buf heap this user can allocate from, to export a fence")
        for heap in (try? DmaHeap.names(kernel: kernel)) ?? [] {
            guard
                let buffer = try? DmaHeap(heap, kernel: kernel).allocate(length: kernel.pageSize, name: Self.debugName)
            else { continue }
            item.path = "a sync_file exported from a \(heap)-heap buffer"
            do {
                let fence = try buffer.exportSyncFile(for: .write)
                do {
                    try fence.setDeadline(after: .milliseconds(16))
                    item.status = .ok
                    item.detail = "a deadline 16 ms ahead was accepted"
                } catch  where error.errno == .ENOTTY {
                    item.status = .missing
                    item.errno = error.errno.name
                    item.detail = "not in this kernel: sync_file answers the ioctl as unknown (ENOTTY)"
                }
                try fence.close()
                try buffer.close()
            } catch {
                item.fail(error)
            }
            return item
        }
        return item
    }

    /// DRM_IOCTL_MODE_CLOSEFB (6.8) on a framebuffer of the first KMS device: afterwards RMFB
    /// must not find it (ENOENT). A kernel without it rejects the call (EINVAL, drm_ioctl's
    /// answer to an unknown core ioctl) and the framebuffer is still there.
    func tryCloseFramebuffer() -> ProbeReport.InterfaceReport {
        var item = ProbeReport.InterfaceReport(
            name: "DRM_IOCTL_MODE_CLOSEFB", since: "6.8", status: .skipped, detail: "no KMS device")
        for (path, _) in (try? DRMDevice.drivers(kernel: kernel)) ?? [] {
            guard let device = try? DRMDevice(path: path, kernel: kernel) else { continue }
            guard ((try? kernel.drmResources(device.fd).crtcs.count) ?? 0) > 0 else {
                try? device.close()
                continue
            }
            item.path = path
            do {
                let buffer = try device.createDumbBuffer(width: 64, height: 64)
                let framebuffer = try device.addFramebuffer(
                    DRMFramebufferRequest(
                        width: 64, height: 64, format: DRMFormat.xrgb8888, handles: [buffer.handle],
                        pitches: [UInt32(buffer.pitch!)]))
                let id = framebuffer.id
                // By the raw calls, so that what follows CLOSEFB is seen as it is: RMFB finds
                // the framebuffer again exactly when CLOSEFB did nothing.
                let closed = Result { () throws(KernelError) in try kernel.drmCloseFramebuffer(device.fd, id) }
                let removed = Result { () throws(KernelError) in try kernel.drmRemoveFramebuffer(device.fd, id) }
                switch (closed, removed) {
                case (.success, .failure(let error)) where error.errno == .ENOENT:
                    item.status = .ok
                    item.detail = "the framebuffer was closed: RMFB no longer finds it (ENOENT)"
                case (.failure(let error), .success) where error.errno == .EINVAL:
                    item.status = .missing
                    item.errno = error.errno.name
                    item.detail =
                        "not in this kernel: EINVAL for a valid framebuffer (drm_ioctl's answer to an unknown core ioctl), which RMFB then still found"
                case (.failure(let error), _):
                    item.fail(error)
                case (.success, _):
                    item.status = .failed
                    item.detail = "CLOSEFB succeeded but RMFB still found the framebuffer"
                }
                try? framebuffer.remove()  // already gone either way; ENOENT here is expected
                try buffer.close()
            } catch {
                item.fail(error)
            }
            try? device.close()
            return item
        }
        return item
    }
}
