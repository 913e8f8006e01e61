import DmaBufKernel
import Foundation

/// V4L2 ioctls on the simulated vivid and vim2m nodes, with vb2's checks and errnos on Linux 6.1.
extension SimulatedKernel {
    func videoDevice(at path: String) -> SimulatedVideoDevice? {
        guard path.hasPrefix("/dev/video"), let index = Int(path.dropFirst("/dev/video".count)),
            videoDevices.indices.contains(index)
        else { return nil }
        return videoDevices[index]
    }

    /// A new open of a video node (v4l2_open: ENODEV while vivid is disconnected).
    func openVideo(_ device: SimulatedVideoDevice, nonBlocking: Bool) throws(KernelError) -> SimulatedVideoFile {
        try locked { () throws(KernelError) in
            if device.disconnected { throw KernelError("open", .ENODEV) }
            device.users += 1
            return SimulatedVideoFile(device: device, context: device.newContext(), nonBlocking: nonBlocking)
        }
    }

    /// The video node behind `fd`: EBADF when closed, ENOTTY when not a video node, ENODEV
    /// once disconnected (v4l2_ioctl on an unregistered video_device).
    func video(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedVideoFile {
        record(operation)
        guard let file = try file(fd, operation).video else { throw KernelError(operation, .ENOTTY) }
        if locked({ file.device.disconnected }) { throw KernelError(operation, .ENODEV) }
        return file
    }

    /// The queue of `type` on this open: EINVAL when the node has none.
    private func queue(
        _ fd: FileDescriptorNumber, _ type: V4L2BufferType, _ operation: String
    ) throws(KernelError)
        -> (SimulatedVideoFile, SimulatedVideoQueue)
    {
        let file = try video(fd, operation)
        guard let queue = file.context.queue(type) else { throw KernelError(operation, .EINVAL) }
        return (file, queue)
    }

    public func v4l2QueryCapability(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Capability {
        try video(fd, "VIDIOC_QUERYCAP").device.capability
    }

    public func v4l2EnumFormat(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32
    ) throws(KernelError) -> V4L2PixelFormat {
        let (file, _) = try queue(fd, type, "VIDIOC_ENUM_FMT")
        let formats = file.device.formats(for: type)
        guard Int(index) < formats.count else { throw KernelError("VIDIOC_ENUM_FMT", .EINVAL) }
        return formats[Int(index)].fourcc
    }

    public func v4l2GetFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType) throws(KernelError) -> V4L2Format {
        let (_, queue) = try queue(fd, type, "VIDIOC_G_FMT")
        return locked { queue.format }
    }

    public func v4l2SetFormat(
        _ fd: FileDescriptorNumber, _ format: V4L2Format, tryOnly: Bool
    ) throws(KernelError) -> V4L2Format {
        let operation = tryOnly ? "VIDIOC_TRY_FMT" : "VIDIOC_S_FMT"
        let (file, queue) = try queue(fd, format.type, operation)
        let device = file.device
        // An unknown format falls back to the driver's first; the size to the nearest it has.
        let formats = device.formats(for: format.type)
        let pixelFormat = formats.first { $0.fourcc == format.pixelFormat } ?? formats[0]
        let fixed: (UInt32, UInt32)? = locked {
            device.role == .capture && device.connector != SimulatedVivid.webcamInput
                ? (queue.width, queue.height) : nil
        }
        // vicodec's encoder: CAPTURE's coded size is OUTPUT's (6.12), and OUTPUT's S_FMT sets it (both).
        let codedSize: (UInt32, UInt32)? = locked {
            guard device.codec == .encoder, !format.type.isOutput, version.vicodecCodedSizeIsReadOnly,
                let output = file.context.queue(.videoOutput)
            else { return nil }
            return (output.width, output.height)
        }
        let (width, height) = fixed ?? codedSize ?? device.nearestSize(width: format.width, height: format.height)
        return try locked { () throws(KernelError) in
            if tryOnly {
                return V4L2Format(
                    type: format.type, width: width, height: height, pixelFormat: pixelFormat.fourcc, field: .none,
                    colorspace: .srgb,
                    planes: pixelFormat.planeFormats(width: width, height: height))
            }
            if !queue.buffers.isEmpty { throw KernelError(operation, .EBUSY) }  // vb2_is_busy
            (queue.pixelFormat, queue.width, queue.height) = (pixelFormat, width, height)
            if device.codec == .encoder && format.type.isOutput, let coded = file.context.queue(.videoCapture) {
                (coded.width, coded.height) = (width, height)  // vidioc_s_fmt_vid_out: q_data_cap coded size
            }
            if device.role == .capture,
                let size = SimulatedVivid.webcamSizes.firstIndex(where: { $0 == (width, height) })
            {
                // vivid_s_fmt_vid_cap: keep the time per frame within what the new size offers.
                let offered = vivid.intervals(sizeIndex: size)
                if !offered.contains(device.timePerFrame) { device.timePerFrame = offered.last! }
            }
            return queue.format
        }
    }

    public func v4l2RequestBuffers(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, count: UInt32
    )
        throws(KernelError) -> (count: UInt32, capabilities: V4L2BufferCapabilities)
    {
        let operation = "VIDIOC_REQBUFS"
        let (file, queue) = try queue(fd, type, operation)
        if memory == .userPointer { throw KernelError(operation, .EINVAL, reason: "USERPTR is not modelled") }
        let released: [SimulatedVideoBuffer] = try locked { () throws(KernelError) in
            // vb2_queue_is_busy / vb2_core_reqbufs.
            if let owner = queue.owner, owner != ObjectIdentifier(file) { throw KernelError(operation, .EBUSY) }
            if queue.streaming { throw KernelError(operation, .EBUSY) }
            let old = queue.buffers
            queue.slots = []
            queue.memory = nil
            queue.owner = nil
            return old
        }
        // Freeing: exported or mapped MMAP buffers live on through their own references (orphaned).
        free(released)
        guard count > 0 else { return (0, capabilities(of: file.device)) }
        let sizes = locked { queue.planeFormats.map(\.sizeImage) }
        // vb2_core_reqbufs (videobuf2-core.c:817-818 in 6.1): at least min_buffers_needed, at most VB2_MAX_FRAME.
        let granted = min(max(Int(count), queue.minimumBuffers), Self.vb2MaxFrame)
        let made = try allocateBuffers(
            queue, file: file, memory: memory, at: 0, count: granted, sizes: sizes, operation)
        return (UInt32(made), capabilities(of: file.device))
    }

    public func v4l2CreateBuffers(
        _ fd: FileDescriptorNumber, memory: V4L2Memory, format: V4L2Format, count: UInt32
    )
        throws(KernelError) -> V4L2CreatedBuffers
    {
        let operation = "VIDIOC_CREATE_BUFS"
        let (file, queue) = try queue(fd, format.type, operation)
        if memory == .userPointer { throw KernelError(operation, .EINVAL, reason: "USERPTR is not modelled") }
        let maximum = maximumBuffers(file.device, queue)
        let (first, held) = try locked { () throws(KernelError) -> (Int, Int) in
            // vb2_ioctl_create_bufs: the owner's queue; vb2_core_create_bufs: the queue's memory.
            if let owner = queue.owner, owner != ObjectIdentifier(file) { throw KernelError(operation, .EBUSY) }
            if let current = queue.memory, current != memory, !queue.buffers.isEmpty {
                throw KernelError(operation, .EINVAL)
            }
            // queue_setup: one size per plane of the current format, none smaller than it needs.
            let needed = queue.planeFormats.map(\.sizeImage)
            let asked = format.planes.map(\.sizeImage)
            if asked.count != needed.count || asked.contains(0) || zip(asked, needed).contains(where: { $0 < $1 }) {
                throw KernelError(operation, .EINVAL)
            }
            return (queue.firstFree(max(1, Int(count))), queue.buffers.count)
        }
        // vb2_core_create_bufs (videobuf2-core.c:934, 963 in 6.1): ENOBUFS when full, else at most what is left.
        let capabilities = capabilities(of: file.device)
        let reported = capabilities.contains(.maxNumBuffers) ? UInt32(maximum) : nil
        if held == maximum { throw KernelError(operation, .ENOBUFS) }
        guard count > 0 else {
            return V4L2CreatedBuffers(index: UInt32(first), count: 0, capabilities: capabilities, maximum: reported)
        }
        let granted = min(Int(count), maximum - held, maximum - first)
        let made = try allocateBuffers(
            queue, file: file, memory: memory, at: first, count: granted, sizes: format.planes.map(\.sizeImage),
            operation)
        return V4L2CreatedBuffers(
            index: UInt32(first), count: UInt32(made), capabilities: capabilities, maximum: reported)
    }

    /// vb2's capability bits for a queue of `device`: 6.12 adds REMOVE_BUFS (vivid sets
    /// vidioc_remove_bufs; vim2m does not) and max_num_buffers in CREATE_BUFS.
    private func capabilities(of device: SimulatedVideoDevice) -> V4L2BufferCapabilities {
        var capabilities = SimulatedVideoDevice.queueCapabilities
        if version.hasRemoveBuffers {
            capabilities.insert(.maxNumBuffers)
            if device.role != .mem2mem { capabilities.insert(.removeBuffers) }
        }
        return capabilities
    }

    /// The most buffers a queue holds: VB2_MAX_FRAME (32); on 6.12 vivid's single-planar
    /// capture queue holds MAX_VID_CAP_BUFFERS (64, vivid-core.c vivid_create_queue).
    private func maximumBuffers(_ device: SimulatedVideoDevice, _ queue: SimulatedVideoQueue) -> Int {
        version.hasRemoveBuffers && device.role == .capture && queue.type == .videoCapture ? 64 : Self.vb2MaxFrame
    }

    public func v4l2RemoveBuffers(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, count: UInt32
    ) throws(KernelError) {
        let operation = "VIDIOC_REMOVE_BUFS"
        // 6.1 knows no such ioctl (v4l2-ioctl.c __video_do_ioctl: ENOTTY); on 6.12 vim2m does
        // not set vidioc_remove_bufs (ENOTTY as well).
        let file = try video(fd, operation)
        guard version.hasRemoveBuffers, file.device.role != .mem2mem else {
            record(operation)
            throw KernelError(operation, .ENOTTY)
        }
        let (_, queue) = try self.queue(fd, type, operation)
        guard count > 0 else { return }  // vb2_ioctl_remove_bufs
        let maximum = maximumBuffers(file.device, queue)
        let removed = try locked { () throws(KernelError) -> [SimulatedVideoBuffer] in
            if let owner = queue.owner, owner != ObjectIdentifier(file) { throw KernelError(operation, .EBUSY) }
            // vb2_core_remove_bufs: no more than it holds, a range inside max_num_buffers, each
            // buffer there (EINVAL) and the application's (EBUSY).
            if Int(count) > queue.buffers.count || Int(index) > maximum - Int(count) {
                throw KernelError(operation, .EINVAL)
            }
            let range = Int(index)..<(Int(index) + Int(count))
            let buffers = try range.map { position throws(KernelError) -> SimulatedVideoBuffer in
                guard let buffer = queue.buffer(position) else { throw KernelError(operation, .EINVAL) }
                return buffer
            }
            if buffers.contains(where: { $0.state != .dequeued }) { throw KernelError(operation, .EBUSY) }
            for position in range { queue.slots[position] = nil }
            while let last = queue.slots.last, last == nil { queue.slots.removeLast() }
            if queue.slots.isEmpty { (queue.memory, queue.owner) = (nil, nil) }
            return buffers
        }
        free(removed)
    }

    /// VB2_MAX_FRAME (include/media/videobuf2-core.h): the most buffers a queue holds.
    static let vb2MaxFrame = 32

    /// Appends `count` buffers with planes of `sizes` (MMAP: each plane's memory, at the next
    /// page-aligned offset, as vb2 __setup_offsets).
    private func allocateBuffers(
        _ queue: SimulatedVideoQueue, file: SimulatedVideoFile, memory: V4L2Memory, at first: Int, count: Int,
        sizes: [UInt32], _ operation: String
    ) throws(KernelError) -> Int {
        let page = UInt32(pageSize)
        // vim2m's capture offsets start at DST_QUEUE_OFF_BASE so one mmap() serves both queues.
        let base: UInt32 = file.device.role == .mem2mem && !queue.type.isOutput ? 1 << 30 : 0
        var offset = locked {
            queue.buffers.flatMap(\.planes).map { $0.memoryOffset + ($0.length + page - 1) / page * page }.max() ?? base
        }
        var buffers: [SimulatedVideoBuffer] = []
        for _ in 0..<count {
            let buffer = SimulatedVideoBuffer(planes: sizes.map { SimulatedVideoPlane(length: $0) })
            buffers.append(buffer)
            guard memory == .mmap else { continue }
            for plane in buffer.planes {
                do {
                    let memfd = try host.memfdCreate(name: "sim:vb2-vmalloc", flags: MemfdFlags.closeOnExec)
                    plane.memory = memfd
                    try host.truncate(memfd, length: UInt64((plane.length + page - 1) / page * page))
                } catch {
                    free(buffers)
                    throw KernelError(operation, error.errno)
                }
                plane.memoryOffset = offset
                offset += (plane.length + page - 1) / page * page
            }
        }
        locked {
            for (offset, buffer) in buffers.enumerated() {
                while queue.slots.count <= first + offset { queue.slots.append(nil) }
                queue.slots[first + offset] = buffer
            }
            queue.memory = memory
            queue.owner = ObjectIdentifier(file)
        }
        return count
    }

    /// Drops the queue's references to buffers' memory (mappings and exports keep their own).
    private func free(_ buffers: [SimulatedVideoBuffer]) {
        for plane in buffers.flatMap(\.planes) {
            if let memory = plane.memory { try? host.close(memory) }
            for segment in plane.imported { try? host.close(segment.memfd) }
            plane.memory = nil
            plane.imported = []
        }
    }

    /// Caller holds the lock.
    private func bufferInfo(_ queue: SimulatedVideoQueue, _ index: Int) -> V4L2BufferInfo {
        let buffer = queue.slots[index]!
        let memory = queue.memory ?? .mmap
        var flags: V4L2BufferFlags = []
        switch buffer.state {
        case .queued: flags.insert(.queued)
        case .done: flags.insert(.done)
        case .dequeued: break
        }
        if buffer.error { flags.insert(.error) }
        if buffer.last { flags.insert(.last) }
        let planes = buffer.planes.map { plane in
            V4L2Plane(
                bytesUsed: plane.bytesUsed, length: plane.length,
                dataOffset: queue.type.isMultiplanar ? plane.dataOffset : 0,
                memoryOffset: memory == .mmap ? plane.memoryOffset : 0, fd: memory == .dmabuf ? plane.dmaBufFD : -1)
        }
        return V4L2BufferInfo(
            index: UInt32(index), type: queue.type, memory: memory, flags: flags, field: .none,
            sequence: buffer.sequence,
            timestamp: buffer.timestamp, planes: queue.type.isMultiplanar ? planes : Array(planes.prefix(1)))
    }

    /// __verify_planes_array: a multi-planar request names at least every plane of the buffer.
    private func checkPlanes(
        _ queue: SimulatedVideoQueue, _ index: Int, given: Int, _ operation: String
    ) throws(KernelError) {
        guard let buffer = queue.buffer(index) else { throw KernelError(operation, .EINVAL) }
        if queue.type.isMultiplanar && (given < buffer.planes.count || given > 8) {
            throw KernelError(operation, .EINVAL)
        }
    }

    public func v4l2QueryBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, index: UInt32, planes: Int
    )
        throws(KernelError) -> V4L2BufferInfo
    {
        let (_, queue) = try queue(fd, type, "VIDIOC_QUERYBUF")
        return try locked { () throws(KernelError) in
            try checkPlanes(queue, Int(index), given: planes, "VIDIOC_QUERYBUF")
            return bufferInfo(queue, Int(index))
        }
    }

    /// mmap of a video node maps one plane of an MMAP buffer by its offset (vb2_mmap).
    func mapVideoBuffer(
        _ video: SimulatedVideoFile, file: SimulatedFile, length: Int, protection: MemoryProtection, offset: UInt64
    )
        throws(KernelError) -> UnsafeMutableRawPointer
    {
        let page = UInt64(pageSize)
        let (memory, size) = try locked { () throws(KernelError) -> (FileDescriptorNumber, UInt64) in
            if video.device.disconnected { throw KernelError("mmap", .ENODEV) }
            let planes = video.context.queues.filter { $0.memory == .mmap }.flatMap { $0.buffers.flatMap(\.planes) }
            // "not set up for mmap" / no buffer at that offset.
            guard let plane = planes.first(where: { UInt64($0.memoryOffset) == offset }), let memory = plane.memory
            else {
                throw KernelError("mmap", .EINVAL)
            }
            return (memory, (UInt64(plane.length) + page - 1) / page * page)
        }
        if UInt64(length) > size { throw KernelError("mmap", .EINVAL) }
        let base = try mapSegments(
            [SimulatedSegment(memfd: memory, offset: 0, size: size)], length: Int(size), protection: protection,
            shared: true, offset: 0)
        locked {
            file.references += 1
            mappings[base] = (file, length)
        }
        return base
    }

    public func v4l2ExportBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, plane: UInt32, flags: OpenFlags
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        let operation = "VIDIOC_EXPBUF"
        let (file, queue) = try queue(fd, type, operation)
        let device = file.device
        let (memory, size) = try locked { () throws(KernelError) -> (FileDescriptorNumber, UInt32) in
            // vb2_core_expbuf: MMAP queues only, a valid index and plane, CLOEXEC|ACCMODE flags.
            guard queue.memory == .mmap, let buffer = queue.buffer(Int(index)), Int(plane) < buffer.planes.count,
                let memory = buffer.planes[Int(plane)].memory,
                flags.subtracting([.closeOnExec, .readWrite, .writeOnly]).isEmpty
            else { throw KernelError(operation, .EINVAL) }
            return (memory, buffer.planes[Int(plane)].length)
        }
        let page = UInt64(pageSize)
        let rounded = (UInt64(size) + page - 1) / page * page
        let piece: FileDescriptorNumber
        do { piece = try host.duplicate(memory) } catch { throw KernelError(operation, error.errno) }
        let contiguous = device.allocator == .dmaContig
        let buffer = SimulatedDmaBuf(
            exporter: contiguous ? "videobuf2_dma_contig" : "videobuf2_vmalloc", size: rounded,
            contiguousBytes: contiguous ? rounded : page, writable: !flags.isDisjoint(with: [.readWrite, .writeOnly]),
            mmapRule: .sharedOnly,
            segments: [SimulatedSegment(memfd: piece, offset: 0, size: rounded)])
        return try install(.dmaBuf(buffer), label: "EXPBUF", closeOnExec: flags.contains(.closeOnExec))
    }

    public func v4l2QueueBuffer(
        _ fd: FileDescriptorNumber, _ request: V4L2BufferInfo
    ) throws(KernelError) -> V4L2BufferInfo {
        let operation = "VIDIOC_QBUF"
        let (file, queue) = try queue(fd, request.type, operation)
        let index = Int(request.index)
        // vb2_queue_or_prepare_buf: buffers exist, the index and memory match, every plane named;
        // vb2_core_qbuf: the buffer is the application's.
        let lengths = try locked { () throws(KernelError) -> [UInt32] in
            guard let memory = queue.memory, memory == request.memory else { throw KernelError(operation, .EINVAL) }
            try checkPlanes(queue, index, given: request.planes.count, operation)
            guard queue.slots[index]!.state == .dequeued else { throw KernelError(operation, .EINVAL) }
            return queue.slots[index]!.planes.map(\.length)
        }
        let given =
            queue.type.isMultiplanar
            ? Array(request.planes.prefix(lengths.count)) : [request.planes.first ?? V4L2Plane()]
        if queue.type.isOutput {
            // __verify_length: a payload within the plane; a data offset inside the payload.
            for (plane, length) in zip(given, lengths) {
                let limit = request.memory == .dmabuf && queue.type.isMultiplanar ? plane.length : length
                if plane.bytesUsed > limit { throw KernelError(operation, .EINVAL) }
                let used = plane.bytesUsed == 0 ? limit : plane.bytesUsed
                if plane.dataOffset > 0 && plane.dataOffset >= used { throw KernelError(operation, .EINVAL) }
            }
        }
        var imported: [[SimulatedSegment]] = []
        if request.memory == .dmabuf {
            do {
                for (plane, length) in zip(given, lengths) {
                    imported.append(
                        try importPlane(plane, minimum: length, allocator: file.device.allocator, operation))
                }
            } catch {
                for segment in imported.flatMap({ $0 }) { try? host.close(segment.memfd) }
                throw error
            }
        }
        let failure: KernelError? = locked {
            let buffer = queue.slots[index]!
            // vivid's buf_prepare (output): each plane's payload covers the picture plus its data offset.
            if file.device.role == .output {
                for (number, (plane, format)) in zip(given, queue.planeFormats).enumerated() {
                    let used = plane.bytesUsed == 0 ? buffer.planes[number].length : plane.bytesUsed
                    if used < format.sizeImage + (queue.type.isMultiplanar ? plane.dataOffset : 0) {
                        return KernelError(operation, .EINVAL)
                    }
                }
            }
            for (number, plane) in buffer.planes.enumerated() {
                for segment in plane.imported { try? host.close(segment.memfd) }
                plane.imported = number < imported.count ? imported[number] : []
                plane.dmaBufFD = request.memory == .dmabuf ? given[number].fd : -1
                plane.bytesUsed =
                    queue.type.isOutput ? (given[number].bytesUsed == 0 ? plane.length : given[number].bytesUsed) : 0
                plane.dataOffset = queue.type.isOutput && queue.type.isMultiplanar ? given[number].dataOffset : 0
            }
            buffer.state = .queued
            (buffer.error, buffer.last) = (false, false)
            queue.queueCounter += 1
            buffer.queuedAt = queue.queueCounter
            queue.startIfReady()
            if file.device.codec != nil && !queue.type.isOutput { vicodec.captureQueued(file.context, queue, buffer) }
            state.broadcast()
            return nil
        }
        if let failure {
            for segment in imported.flatMap({ $0 }) { try? host.close(segment.memfd) }
            throw failure
        }
        if file.device.codec != nil && queue.type.isOutput, let buffer = locked({ queue.slots[index] }) {
            vicodec.outputQueued(file.context, buffer)
        }
        return locked { bufferInfo(queue, index) }
    }

    /// __prepare_dmabuf for one plane: a dma-buf fd, at least the plane's size, that
    /// vb2-vmalloc can vmap, or whose first `length` bytes vb2-dma-contig finds contiguous.
    /// Returns the queue's own references to its memory.
    private func importPlane(
        _ plane: V4L2Plane, minimum: UInt32, allocator: SimulatedVideoDevice.Allocator, _ operation: String
    ) throws(KernelError) -> [SimulatedSegment] {
        let fd = FileDescriptorNumber(rawValue: plane.fd)
        guard let buffer = locked({ files[fd.rawValue]?.dmaBuf }) else { throw KernelError(operation, .EINVAL) }  // "invalid dmabuf fd"
        let length = plane.length == 0 ? buffer.size : UInt64(plane.length)
        if length < UInt64(minimum) || buffer.size < UInt64(minimum) { throw KernelError(operation, .EINVAL) }  // "invalid dmabuf length"
        switch allocator {
        case .vmalloc:
            if !hasVmap(buffer) { throw KernelError(operation, .EFAULT) }  // vb2_vmalloc_map_dmabuf: dma_buf_vmap fails
        case .dmaContig:
            // vb2_dc_map_dmabuf: "contiguous chunk is too small".
            if buffer.contiguousBytes < length { throw KernelError(operation, .EFAULT) }
        }
        var pieces: [SimulatedSegment] = []
        for piece in buffer.segments.isEmpty
            ? [SimulatedSegment(memfd: fd, offset: 0, size: buffer.size)] : buffer.segments
        {
            do {
                pieces.append(
                    SimulatedSegment(memfd: try host.duplicate(piece.memfd), offset: piece.offset, size: piece.size))
            } catch {
                for made in pieces { try? host.close(made.memfd) }
                throw KernelError(operation, error.errno)
            }
        }
        return pieces
    }

    public func v4l2DequeueBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, planes: Int
    )
        throws(KernelError) -> V4L2BufferInfo?
    {
        let operation = "VIDIOC_DQBUF"
        let (file, queue) = try queue(fd, type, operation)
        let device = file.device
        try locked { () throws(KernelError) in
            guard queue.memory == memory, queue.streaming else { throw KernelError(operation, .EINVAL) }  // "streaming off, will not wait"
            if let first = queue.buffers.first, queue.type.isMultiplanar, planes < first.planes.count {
                throw KernelError(operation, .EINVAL)
            }
        }
        if let codec = file.context.codec, !queue.type.isOutput {
            // vb2's last_buffer_dequeued: "last buffer dequeued already, will not wait for buffers".
            if locked({ codec.lastBufferDequeued }) { throw KernelError(operation, .EPIPE) }
        }
        if device.codec != nil {
            try vicodec.runJob(file.context)
        } else if device.role == .mem2mem {
            try vim2m.runJob(file.context)
        }
        // vivid's capture thread fills buffers while the process waits (poll, or the hooks
        // below), so DQBUF takes only what is done; its output consumes the oldest queued buffer
        // and gives one back only while another is pending (vivid_thread_vid_out_tick).
        let next: SimulatedVideoBuffer? = locked {
            if let done = queue.oldest(.done) { return done }
            guard device.role == .output, queue.running, let buffer = queue.oldest(.queued) else { return nil }
            return queue.buffers.count(where: { $0.state == .queued }) < 2 ? nil : buffer
        }
        guard let buffer = next else {
            if file.nonBlocking { return nil }
            throw KernelError(operation, .EAGAIN, reason: "the simulation does not block: open the node non-blocking")
        }
        if buffer.state == .queued { locked { finish(queue, buffer) } }
        if buffer.awaitsPicture {
            try vivid.draw(queue, file.context, sequence: buffer.sequence, into: buffer)
            buffer.awaitsPicture = false
        }
        return locked {
            buffer.state = .dequeued
            if buffer.last, let codec = file.context.codec { codec.lastBufferDequeued = true }
            if device.role == .capture && device.dequeueError {
                device.dequeueError = false
                buffer.error = true
            }
            let info = bufferInfo(queue, queue.index(of: buffer)!)
            if memory == .dmabuf {
                for plane in buffer.planes {
                    for segment in plane.imported { try? host.close(segment.memfd) }
                    plane.imported = []
                }
            }
            return info
        }
    }

    /// `periods` frame periods of vivid's capture thread pass at once on the capture node
    /// `name`, as they would while the process is busy elsewhere: each fills the oldest queued
    /// buffer, or loses its frame when the process has queued none.
    public func elapseCapturePeriods(_ periods: Int, node name: String) {
        locked {
            guard let queue = captureQueue(name), queue.running else { return }
            for _ in 0..<periods { vivid.captureTick(queue) }
        }
    }

    /// vivid's capture thread on `name` wakes late: the next frame comes `periods` sequence
    /// numbers later than due, whatever buffers are queued (it counts the periods it slept).
    public func delayCaptureThread(skipping periods: Int, node name: String) {
        locked { captureQueue(name)?.lateWake += UInt32(periods) }
    }

    private func captureQueue(_ name: String) -> SimulatedVideoQueue? {
        guard let device = videoDevices.first(where: { $0.name == name }), device.role == .capture else { return nil }
        return device.shared?.queues.first { !$0.type.isOutput }
    }

    /// The driver is done with `buffer`: its sequence number, timestamp and payload. Caller
    /// holds the lock.
    func finish(_ queue: SimulatedVideoQueue, _ buffer: SimulatedVideoBuffer) {
        buffer.state = .done
        buffer.sequence = queue.sequence
        queue.sequence += 1
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        buffer.timestamp = .seconds(now.tv_sec) + .microseconds(now.tv_nsec / 1000)
        if !queue.type.isOutput {
            for (plane, format) in zip(buffer.planes, queue.planeFormats) { plane.bytesUsed = format.sizeImage }
        }
    }

    func withMapped(_ plane: SimulatedVideoPlane, _ body: (UnsafeMutableRawBufferPointer) -> Void) throws(KernelError) {
        let segments = locked { plane.segments(pageSize: pageSize) }
        let length = Int(segments.reduce(0) { $0 + $1.size })
        guard length > 0 else { return }
        let base = try mapSegments(segments, length: length, protection: [.read, .write], shared: true, offset: 0)
        defer { try? host.munmap(base, length: length) }
        body(UnsafeMutableRawBufferPointer(start: base, count: length))
    }

    /// What poll reports for a video file (vb2_poll / v4l2_m2m_poll), with the lock held.
    func videoReadiness(_ video: SimulatedVideoFile) -> PollEvents {
        let device = video.device
        if device.disconnected { return [.error, .hangUp] }  // v4l2_poll on an unregistered node
        let queues = video.context.queues
        let codec = video.context.codec
        // v4l2_m2m_poll: a pending event first; DQBUF's EPIPE after the last buffer counts as readable.
        var events: PollEvents = codec.map { $0.events.isEmpty ? [] : [.priority] } ?? []
        if let codec, codec.lastBufferDequeued { events.insert(.readable) }
        // Nothing to wait for on a queue that is not streaming.
        if !queues.contains(where: \.streaming) { return events.union(.error) }
        for queue in queues where queue.streaming {
            let ready: Bool =
                if device.role == .mem2mem {
                    queue.oldest(.done) != nil
                        || (queues.allSatisfy { $0.streaming && $0.oldest(.queued) != nil }
                            && codec.map { !$0.hasStopped && !$0.sourceChanged } != false)
                } else if device.role == .output {
                    queue.oldest(.done) != nil
                        || (queue.running && queue.buffers.count(where: { $0.state == .queued }) >= 2)
                } else {
                    // While the process waits, vivid's thread fills the next queued buffer.
                    queue.oldest(.done) != nil
                        || (queue.running && queue.oldest(.queued) != nil
                            && {
                                vivid.captureTick(queue); return true
                            }())
                }
            if ready { events.insert(queue.type.isOutput ? .writable : .readable) }
        }
        return events
    }

    public func v4l2Stream(_ fd: FileDescriptorNumber, type: V4L2BufferType, on: Bool) throws(KernelError) {
        let operation = on ? "VIDIOC_STREAMON" : "VIDIOC_STREAMOFF"
        let (file, queue) = try queue(fd, type, operation)
        let device = file.device
        let dropped: [SimulatedSegment] = try locked { () throws(KernelError) in
            if let owner = queue.owner, owner != ObjectIdentifier(file) { throw KernelError(operation, .EBUSY) }
            if on {
                // vb2_core_streamon: buffers must exist (streamoff needs none).
                guard queue.memory != nil else { throw KernelError(operation, .EINVAL) }
                if queue.streaming { return [] }
                if device.startStreamingError && device.role != .mem2mem
                    && queue.buffers.count(where: { $0.state == .queued }) >= queue.minimumBuffers
                {
                    // start_streaming fails; vb2 takes the buffers back as queued.
                    device.startStreamingError = false
                    throw KernelError(operation, .EINVAL)
                }
                queue.streaming = true
                (queue.sequence, queue.lateWake) = (0, 0)
                queue.startIfReady()
                state.broadcast()
                return []
            }
            // __vb2_queue_cancel: every buffer back to userspace.
            queue.streaming = false
            queue.started = false
            if let codec = file.context.codec {
                // vb2 clears last_buffer_dequeued; v4l2_m2m_update_stop_streaming_state ends a drain.
                (codec.isDraining, codec.hasStopped, codec.lastSource, codec.nextBufferIsLast) = (
                    false, false, nil, false
                )
                if queue.type.isOutput {
                    codec.firstSourceChangeSent = false
                } else {
                    (codec.lastBufferDequeued, codec.sourceChanged) = (false, false)
                }
            }
            var segments: [SimulatedSegment] = []
            for plane in queue.buffers.flatMap(\.planes) {
                segments += plane.imported
                plane.imported = []
            }
            for buffer in queue.buffers { buffer.state = .dequeued }
            return segments
        }
        for segment in dropped { try? host.close(segment.memfd) }
    }

    public func v4l2EnumFrameSize(
        _ fd: FileDescriptorNumber, pixelFormat: V4L2PixelFormat, index: UInt32
    ) throws(KernelError) -> V4L2FrameSize {
        let operation = "VIDIOC_ENUM_FRAMESIZES"
        let device = try video(fd, operation).device
        guard device.formats.contains(where: { $0.fourcc == pixelFormat }) else {
            throw KernelError(operation, .EINVAL)
        }
        switch device.role {
        case .mem2mem:  // vim2m: one range, widths in steps of 2
            guard index == 0 else { throw KernelError(operation, .EINVAL) }
            return .stepwise(width: 32...640, widthStep: 2, height: 32...480, heightStep: 1)
        case .capture:
            guard Int(index) < SimulatedVivid.webcamSizes.count else { throw KernelError(operation, .EINVAL) }
            let size = SimulatedVivid.webcamSizes[Int(index)]
            return .discrete(width: size.0, height: size.1)
        case .output:  // the output has a scaler: continuous within vivid's limits
            guard index == 0 else { throw KernelError(operation, .EINVAL) }
            return .stepwise(width: 16...(4096 * 4), widthStep: 2, height: 16...(2160 * 4), heightStep: 2)
        }
    }

    public func v4l2EnumFrameInterval(
        _ fd: FileDescriptorNumber, pixelFormat: V4L2PixelFormat, width: UInt32, height: UInt32, index: UInt32
    )
        throws(KernelError) -> V4L2FrameInterval
    {
        let operation = "VIDIOC_ENUM_FRAMEINTERVALS"
        let device = try video(fd, operation).device
        guard device.role == .capture else { throw KernelError(operation, device.role == .mem2mem ? .ENOTTY : .EINVAL) }
        // vidioc_enum_frameintervals (webcam): the intervals the size offers.
        guard device.formats.contains(where: { $0.fourcc == pixelFormat }),
            let size = SimulatedVivid.webcamSizes.firstIndex(where: { $0 == (width, height) })
        else { throw KernelError(operation, .EINVAL) }
        let offered = vivid.intervals(sizeIndex: size)
        guard Int(index) < offered.count else { throw KernelError(operation, .EINVAL) }
        return .discrete(offered[Int(index)])
    }

    public func v4l2GetFrameInterval(
        _ fd: FileDescriptorNumber, type: V4L2BufferType
    ) throws(KernelError) -> V4L2Fraction {
        let device = try video(fd, "VIDIOC_G_PARM").device
        switch device.role {
        case .mem2mem: throw KernelError("VIDIOC_G_PARM", .ENOTTY)
        case .capture, .output:
            guard device.shared?.queue(type) != nil else { throw KernelError("VIDIOC_G_PARM", .EINVAL) }
            // vivid's output starts on S-Video, NTSC.
            return locked {
                if device.role == .output {
                    return device.connector == SimulatedVivid.hdmiOutput
                        ? V4L2Fraction(1, 60) : V4L2Fraction(1001, 30000)
                }
                switch device.connector {
                case SimulatedVivid.webcamInput: return device.timePerFrame
                case SimulatedVivid.hdmiInput: return V4L2Fraction(1, 60)
                default: return V4L2Fraction(1, 25)
                }
            }
        }
    }

    public func v4l2SetFrameInterval(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, _ interval: V4L2Fraction
    ) throws(KernelError) -> V4L2Fraction {
        let device = try video(fd, "VIDIOC_S_PARM").device
        guard device.role == .capture else { throw KernelError("VIDIOC_S_PARM", .ENOTTY) }
        guard device.shared?.queue(type) != nil else { throw KernelError("VIDIOC_S_PARM", .EINVAL) }
        // vivid_vid_cap_s_parm: only the webcam's rate can be set; other inputs keep their timings'.
        if locked({ device.connector != SimulatedVivid.webcamInput }) {
            return try v4l2GetFrameInterval(fd, type: type)
        }
        return locked {
            // vivid_vid_cap_s_parm: the first offered interval not longer than the one asked for.
            let size =
                device.shared?.queues.first.flatMap { queue in
                    SimulatedVivid.webcamSizes.firstIndex { $0 == (queue.width, queue.height) }
                } ?? 1
            let offered = vivid.intervals(sizeIndex: size)
            let asked = interval.denominator == 0 ? offered.last! : interval
            let chosen =
                offered.first {
                    UInt64(asked.numerator) * UInt64($0.denominator) >= UInt64($0.numerator) * UInt64(asked.denominator)
                } ?? offered.last!
            device.timePerFrame = chosen
            return chosen
        }
    }

    public func v4l2SetControl(_ fd: FileDescriptorNumber, id: V4L2ControlID, value: Int32) throws(KernelError) {
        let file = try video(fd, "VIDIOC_S_EXT_CTRLS")
        let device = file.device
        try locked { () throws(KernelError) in
            switch (device.role, id) {
            case (.mem2mem, V4L2Control.horizontalFlip), (.mem2mem, V4L2Control.verticalFlip):
                file.context.controls[id] = value
            case (.mem2mem, _): throw KernelError("VIDIOC_S_EXT_CTRLS", .EINVAL)
            case (_, VividControl.startStreamingError): device.startStreamingError = true  // a button
            case (_, VividControl.dequeueError): device.dequeueError = true  // a button
            case (_, VividControl.disconnect):  // a button: every node of the instance goes away
                for node in videoDevices where node.name.prefix(9) == device.name.prefix(9) { node.disconnected = true }
                state.broadcast()
            case (.capture, SimulatedVivid.loopVideo), (.capture, SimulatedVivid.hdmiConnectedTo):
                // The switch of this version (the other one does not exist); a value in its range.
                guard let info = vivid.controls(of: device).first(where: { $0.id == id }) else {
                    throw KernelError("VIDIOC_S_EXT_CTRLS", .EINVAL)
                }
                guard (info.minimum...info.maximum).contains(Int64(value)) else {
                    throw KernelError("VIDIOC_S_EXT_CTRLS", .ERANGE)
                }
                file.context.controls[id] = value
            case (_, VividControl.testPattern), (_, VividControl.osdTextMode), (_, VividControl.horizontalMovement),
                (_, VividControl.verticalMovement), (_, V4L2Control.horizontalFlip), (_, V4L2Control.verticalFlip):
                file.context.controls[id] = value
            default: throw KernelError("VIDIOC_S_EXT_CTRLS", .EINVAL)
            }
        }
    }

    public func v4l2GetControl(_ fd: FileDescriptorNumber, id: V4L2ControlID) throws(KernelError) -> Int32 {
        let file = try video(fd, "VIDIOC_G_EXT_CTRLS")
        // Defaults as the drivers register them (vivid: no movement; everything else 0).
        let defaults: [V4L2ControlID: Int32] =
            file.device.role == .mem2mem
            ? [V4L2Control.horizontalFlip: 0, V4L2Control.verticalFlip: 0]
            : [
                VividControl.testPattern: 0, VividControl.osdTextMode: 0,
                VividControl.horizontalMovement: VividControl.noMovement,
                VividControl.verticalMovement: VividControl.noMovement, V4L2Control.horizontalFlip: 0,
                V4L2Control.verticalFlip: 0,
                version.vividLoopsThroughConnectionMenus ? SimulatedVivid.hdmiConnectedTo : SimulatedVivid.loopVideo: 0,
            ]
        return try locked { () throws(KernelError) in
            guard let value = file.context.controls[id] ?? defaults[id] else {
                throw KernelError("VIDIOC_G_EXT_CTRLS", .EINVAL)
            }
            return value
        }
    }

    /// The last reference to a video file is gone (lock held): queues it owned are stopped and
    /// freed; a disconnected vivid instance comes back once its last user has gone
    /// (vivid_fop_release → vivid_reconnect).
    func releaseVideoFile(_ file: SimulatedVideoFile) {
        let device = file.device
        for queue in file.context.queues where queue.owner == ObjectIdentifier(file) || device.role == .mem2mem {
            queue.streaming = false
            queue.started = false
            free(queue.buffers)
            queue.slots = []
            queue.memory = nil
            queue.owner = nil
        }
        device.users -= 1
        let instance = videoDevices.filter { $0.name.prefix(9) == device.name.prefix(9) }
        if device.disconnected && instance.allSatisfy({ $0.users == 0 }) {
            for node in instance { node.disconnected = false }
        }
    }
}

/// One open of a video node.
final class SimulatedVideoFile {
    let device: SimulatedVideoDevice
    let context: SimulatedVideoContext
    let nonBlocking: Bool
    init(device: SimulatedVideoDevice, context: SimulatedVideoContext, nonBlocking: Bool) {
        (self.device, self.context, self.nonBlocking) = (device, context, nonBlocking)
    }
}
