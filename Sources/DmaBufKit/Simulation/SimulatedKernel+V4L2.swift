/// V4L2 ioctls on the simulated vivid nodes, with vb2's checks and errnos on Linux 6.1.
extension SimulatedKernel {
    func videoDevice(at path: String) -> SimulatedVideoDevice? {
        guard path.hasPrefix("/dev/video"), let index = Int(path.dropFirst("/dev/video".count)), videoDevices.indices.contains(index) else { return nil }
        return videoDevices[index]
    }

    /// The video node behind `fd`: EBADF when closed, ENOTTY when not a video node.
    private func video(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> (SimulatedVideoFile, SimulatedVideoDevice) {
        record(operation)
        guard let file = try file(fd, operation).video else { throw KernelError(operation, .ENOTTY) }
        return (file, file.device)
    }

    private func checkType(_ type: V4L2BufferType, _ device: SimulatedVideoDevice, _ operation: String) throws(KernelError) {
        if type != device.type { throw KernelError(operation, .EINVAL) }
    }

    public func v4l2QueryCapability(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Capability {
        try video(fd, "VIDIOC_QUERYCAP").1.capability
    }

    public func v4l2EnumFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32) throws(KernelError) -> UInt32 {
        let device = try video(fd, "VIDIOC_ENUM_FMT").1
        try checkType(type, device, "VIDIOC_ENUM_FMT")
        guard index == 0 else { throw KernelError("VIDIOC_ENUM_FMT", .EINVAL) }
        return SimulatedVideoDevice.rgb24
    }

    public func v4l2GetFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType) throws(KernelError) -> V4L2Format {
        let device = try video(fd, "VIDIOC_G_FMT").1
        try checkType(type, device, "VIDIOC_G_FMT")
        return locked { device.format }
    }

    public func v4l2SetFormat(_ fd: FileDescriptorNumber, _ format: V4L2Format, tryOnly: Bool) throws(KernelError) -> V4L2Format {
        let operation = tryOnly ? "VIDIOC_TRY_FMT" : "VIDIOC_S_FMT"
        let device = try video(fd, operation).1
        try checkType(format.type, device, operation)
        return try locked { () throws(KernelError) in
            // The nearest supported size, in RGB24 (vivid falls back to its first format).
            let size = SimulatedVideoDevice.sizes.min {
                abs(Int($0.0) - Int(format.width)) + abs(Int($0.1) - Int(format.height))
                    < abs(Int($1.0) - Int(format.width)) + abs(Int($1.1) - Int(format.height))
            }!
            var result = device.format
            (result.width, result.height) = size
            result.planes = [V4L2Format.Plane(bytesPerLine: size.0 * 3, sizeImage: size.0 * 3 * size.1)]
            if tryOnly { return result }
            // vb2_is_busy: no format change while buffers exist.
            if !device.buffers.isEmpty { throw KernelError(operation, .EBUSY) }
            (device.width, device.height) = size
            return device.format
        }
    }

    public func v4l2RequestBuffers(_ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, count: UInt32)
        throws(KernelError) -> (count: UInt32, capabilities: UInt32)
    {
        let operation = "VIDIOC_REQBUFS"
        let (file, device) = try video(fd, operation)
        try checkType(type, device, operation)
        if memory == .userPointer { throw KernelError(operation, .EINVAL) }  // not modelled
        let released: [SimulatedVideoBuffer] = try locked { () throws(KernelError) in
            // vb2_queue_is_busy / vb2_core_reqbufs.
            if let owner = device.owner, owner != ObjectIdentifier(file) { throw KernelError(operation, .EBUSY) }
            if device.streaming { throw KernelError(operation, .EBUSY) }
            let old = device.buffers
            device.buffers = []
            device.memory = nil
            device.owner = nil
            return old
        }
        // Freeing: exported or mapped MMAP buffers live on through their own references (orphaned).
        for buffer in released {
            if let memory = buffer.memory { try? host.close(memory) }
            for segment in buffer.imported { try? host.close(segment.memfd) }
        }
        guard count > 0 else { return (0, SimulatedVideoDevice.queueCapabilities) }
        let granted = max(Int(count), SimulatedVideoDevice.minimumBuffers)
        var buffers: [SimulatedVideoBuffer] = []
        let size = UInt64(locked { device.sizeImage })
        let page = UInt64(pageSize)
        for _ in 0..<granted {
            let buffer = SimulatedVideoBuffer()
            if memory == .mmap {
                do {
                    let memfd = try host.memfdCreate(name: "sim:vb2-vmalloc", flags: MemfdFlags.closeOnExec)
                    buffer.memory = memfd
                    try host.truncate(memfd, length: (size + page - 1) / page * page)
                } catch {
                    for made in buffers + [buffer] { if let memory = made.memory { try? host.close(memory) } }
                    throw KernelError(operation, error.errno)
                }
            }
            buffers.append(buffer)
        }
        locked {
            device.buffers = buffers
            device.memory = memory
            device.owner = ObjectIdentifier(file)
        }
        return (UInt32(granted), SimulatedVideoDevice.queueCapabilities)
    }

    private func bufferInfo(_ device: SimulatedVideoDevice, _ index: Int) -> V4L2BufferInfo {
        let buffer = device.buffers[index]
        let length = device.sizeImage
        let page = UInt32(pageSize)
        let stride = (length + page - 1) / page * page
        return V4L2BufferInfo(
            index: UInt32(index), type: device.type, memory: device.memory ?? .mmap,
            flags: buffer.state == .queued ? V4L2BufferInfo.flagQueued : 0, field: 1,
            planes: [V4L2Plane(
                bytesUsed: buffer.bytesUsed, length: length, memoryOffset: device.memory == .mmap ? UInt32(index) * stride : 0,
                fd: device.memory == .dmabuf ? buffer.dmaBufFD : -1)])
    }

    public func v4l2QueryBuffer(_ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, index: UInt32, planes: Int)
        throws(KernelError) -> V4L2BufferInfo
    {
        let device = try video(fd, "VIDIOC_QUERYBUF").1
        try checkType(type, device, "VIDIOC_QUERYBUF")
        return try locked { () throws(KernelError) in
            guard Int(index) < device.buffers.count else { throw KernelError("VIDIOC_QUERYBUF", .EINVAL) }
            return bufferInfo(device, Int(index))
        }
    }

    /// mmap of a video node maps an MMAP buffer by its offset (vb2_mmap).
    func mapVideoBuffer(_ device: SimulatedVideoDevice, file: SimulatedFile, length: Int, protection: MemoryProtection, offset: UInt64)
        throws(KernelError) -> UnsafeMutableRawPointer
    {
        let page = UInt64(pageSize)
        let (memory, size) = try locked { () throws(KernelError) -> (FileDescriptorNumber, UInt64) in
            guard device.memory == .mmap else { throw KernelError("mmap", .EINVAL) }  // "not set up for mmap"
            let stride = (UInt64(device.sizeImage) + page - 1) / page * page
            let index = Int(offset / stride)
            guard offset % stride == 0, index < device.buffers.count, let memory = device.buffers[index].memory else {
                throw KernelError("mmap", .EINVAL)
            }
            return (memory, stride)
        }
        if UInt64(length) > size { throw KernelError("mmap", .EINVAL) }
        let base = try mapSegments([SimulatedSegment(memfd: memory, offset: 0, size: size)], length: Int(size), protection: protection, shared: true, offset: 0)
        locked {
            file.references += 1
            mappings[base] = (file, length)
        }
        return base
    }

    public func v4l2ExportBuffer(_ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, plane: UInt32, flags: UInt32)
        throws(KernelError) -> FileDescriptorNumber
    {
        let operation = "VIDIOC_EXPBUF"
        let device = try video(fd, operation).1
        try checkType(type, device, operation)
        let (memory, size) = try locked { () throws(KernelError) -> (FileDescriptorNumber, UInt64) in
            // vb2_core_expbuf: MMAP queues only, a valid index and plane, CLOEXEC|ACCMODE flags.
            guard device.memory == .mmap, Int(index) < device.buffers.count, plane == 0, let memory = device.buffers[Int(index)].memory,
                flags & ~UInt32(0o2000003) == 0
            else { throw KernelError(operation, .EINVAL) }
            return (memory, UInt64(device.sizeImage))
        }
        let page = UInt64(pageSize)
        let piece: FileDescriptorNumber
        do { piece = try host.duplicate(memory) } catch { throw KernelError(operation, error.errno) }
        let buffer = SimulatedDmaBuf(
            exporter: "videobuf2_vmalloc", size: (size + page - 1) / page * page, writable: flags & 0o3 != 0, mmapRule: .sharedOnly,
            segments: [SimulatedSegment(memfd: piece, offset: 0, size: (size + page - 1) / page * page)])
        return try install(.dmaBuf(buffer), label: "EXPBUF", closeOnExec: flags & 0o2000000 != 0)
    }

    public func v4l2QueueBuffer(_ fd: FileDescriptorNumber, _ request: V4L2BufferInfo) throws(KernelError) -> V4L2BufferInfo {
        let operation = "VIDIOC_QBUF"
        let device = try video(fd, operation).1
        try checkType(request.type, device, operation)
        let (memory, size, queued) = locked { (device.memory, device.sizeImage, device.buffers.indices.contains(Int(request.index)) ? device.buffers[Int(request.index)].state == .queued : false) }
        // vb2_queue_or_prepare_buf: buffers must exist, index and memory must match.
        guard let memory, memory == request.memory, locked({ Int(request.index) < device.buffers.count }), !queued else {
            throw KernelError(operation, .EINVAL)
        }
        let plane = request.planes.first ?? V4L2Plane()
        if device.isOutput && plane.bytesUsed > size { throw KernelError(operation, .EINVAL) }  // __verify_length
        var imported: [SimulatedSegment] = []
        if memory == .dmabuf {
            // __prepare_dmabuf: a dma-buf fd, long enough, that vb2-vmalloc can vmap.
            let dmaBufFD = FileDescriptorNumber(rawValue: plane.fd)
            guard let buffer = locked({ files[dmaBufFD.rawValue]?.dmaBuf }) else { throw KernelError(operation, .EINVAL) }
            if buffer.size < UInt64(size) { throw KernelError(operation, .EINVAL) }
            if buffer.exporter == "udmabuf" { throw KernelError(operation, .EFAULT) }  // vb2_vmalloc_map_dmabuf: no vmap
            let pieces = buffer.segments.isEmpty ? [SimulatedSegment(memfd: dmaBufFD, offset: 0, size: buffer.size)] : buffer.segments
            for piece in pieces {
                do { imported.append(SimulatedSegment(memfd: try host.duplicate(piece.memfd), offset: piece.offset, size: piece.size)) } catch {
                    for made in imported { try? host.close(made.memfd) }
                    throw KernelError(operation, error.errno)
                }
            }
        }
        return locked {
            let buffer = device.buffers[Int(request.index)]
            for segment in buffer.imported { try? host.close(segment.memfd) }
            buffer.imported = imported
            buffer.dmaBufFD = memory == .dmabuf ? plane.fd : -1
            buffer.state = .queued
            buffer.bytesUsed = device.isOutput ? (plane.bytesUsed == 0 ? size : plane.bytesUsed) : 0
            device.queueCounter += 1
            buffer.queuedAt = device.queueCounter
            state.broadcast()
            return bufferInfo(device, Int(request.index))
        }
    }

    public func v4l2DequeueBuffer(_ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, planes: Int)
        throws(KernelError) -> V4L2BufferInfo?
    {
        let operation = "VIDIOC_DQBUF"
        let (file, device) = try video(fd, operation)
        try checkType(type, device, operation)
        let next = try locked { () throws(KernelError) -> (Int, SimulatedVideoBuffer)? in
            guard device.memory == memory else { throw KernelError(operation, .EINVAL) }
            guard device.streaming else { throw KernelError(operation, .EINVAL) }  // "streaming off, will not wait"
            let queued = device.buffers.indices.filter { device.buffers[$0].state == .queued }
            guard let index = queued.min(by: { device.buffers[$0].queuedAt < device.buffers[$1].queuedAt }) else { return nil }
            return (index, device.buffers[index])
        }
        guard let (index, buffer) = next else {
            if file.nonBlocking { return nil }
            throw KernelError(operation, .EAGAIN, reason: "the simulation does not block: open the node non-blocking")
        }
        if !device.isOutput { try drawFrame(device, into: buffer) }
        return locked {
            buffer.state = .dequeued
            var info = bufferInfo(device, index)
            info.sequence = device.sequence
            device.sequence += 1
            info.planes[0].bytesUsed = device.isOutput ? buffer.bytesUsed : device.sizeImage
            if device.dequeueError {
                device.dequeueError = false
                info.flags |= V4L2BufferInfo.flagError
            }
            if device.memory == .dmabuf {
                for segment in buffer.imported { try? host.close(segment.memfd) }
                buffer.imported = []
            }
            return info
        }
    }

    private func drawFrame(_ device: SimulatedVideoDevice, into buffer: SimulatedVideoBuffer) throws(KernelError) {
        let page = pageSize
        let segments = buffer.memory.map { [SimulatedSegment(memfd: $0, offset: 0, size: UInt64(device.sizeImage + UInt32(page) - 1) / UInt64(page) * UInt64(page))] }
            ?? buffer.imported
        let length = Int(segments.reduce(0) { $0 + $1.size })
        let base = try mapSegments(segments, length: length, protection: [.read, .write], shared: true, offset: 0)
        defer { try? host.munmap(base, length: length) }
        device.drawPicture(into: UnsafeMutableRawBufferPointer(start: base, count: length))
    }

    public func v4l2Stream(_ fd: FileDescriptorNumber, type: V4L2BufferType, on: Bool) throws(KernelError) {
        let operation = on ? "VIDIOC_STREAMON" : "VIDIOC_STREAMOFF"
        let device = try video(fd, operation).1
        try checkType(type, device, operation)
        let dropped: [SimulatedSegment] = try locked { () throws(KernelError) in
            if on {
                // vb2_core_streamon: buffers must exist (streamoff needs none).
                guard device.memory != nil else { throw KernelError(operation, .EINVAL) }
                if device.streaming { return [] }
                if device.startStreamingError {
                    // vid_cap_start_streaming fails; vb2 takes the buffers back as queued.
                    device.startStreamingError = false
                    throw KernelError(operation, .EINVAL)
                }
                device.streaming = true
                device.sequence = 0
                state.broadcast()
                return []
            }
            // __vb2_queue_cancel: every buffer back to userspace.
            device.streaming = false
            var segments: [SimulatedSegment] = []
            for buffer in device.buffers {
                buffer.state = .dequeued
                segments += buffer.imported
                buffer.imported = []
            }
            return segments
        }
        for segment in dropped { try? host.close(segment.memfd) }
    }

    public func v4l2SetControl(_ fd: FileDescriptorNumber, id: UInt32, value: Int32) throws(KernelError) {
        let device = try video(fd, "VIDIOC_S_EXT_CTRLS").1
        try locked { () throws(KernelError) in
            switch id {
            case VividControl.startStreamingError: device.startStreamingError = true  // a button
            case VividControl.dequeueError: device.dequeueError = true  // a button
            case VividControl.testPattern, VividControl.osdTextMode, VividControl.horizontalMovement, VividControl.verticalMovement,
                0x0098_0914, 0x0098_0915:  // HFLIP, VFLIP
                device.controls[id] = value
            default: throw KernelError("VIDIOC_S_EXT_CTRLS", .EINVAL)
            }
        }
    }

    public func v4l2GetControl(_ fd: FileDescriptorNumber, id: UInt32) throws(KernelError) -> Int32 {
        let device = try video(fd, "VIDIOC_G_EXT_CTRLS").1
        return try locked { () throws(KernelError) in
            guard let value = device.controls[id] else { throw KernelError("VIDIOC_G_EXT_CTRLS", .EINVAL) }
            return value
        }
    }

    /// The last reference to a video file is gone: a queue it owned is stopped and freed.
    func releaseVideoFile(_ file: SimulatedVideoFile) {
        let device = file.device
        guard device.owner == ObjectIdentifier(file) else { return }
        device.streaming = false
        for buffer in device.buffers {
            if let memory = buffer.memory { try? host.close(memory) }
            for segment in buffer.imported { try? host.close(segment.memfd) }
        }
        device.buffers = []
        device.memory = nil
        device.owner = nil
    }
}

/// One open of a video node.
final class SimulatedVideoFile {
    let device: SimulatedVideoDevice
    let nonBlocking: Bool
    init(device: SimulatedVideoDevice, nonBlocking: Bool) { (self.device, self.nonBlocking) = (device, nonBlocking) }
}
