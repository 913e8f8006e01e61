internal import CDmaBuf

/// V4L2 through the shim's flat structs (cdmabuf_v4l2.h); each shim function has one caller.
extension LinuxKernel {
    private static func text<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    public func v4l2QueryCapability(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Capability {
        var cap = cdmabuf_v4l2_capability()
        _ = try call("VIDIOC_QUERYCAP") { cdmabuf_v4l2_querycap(fd.rawValue, &cap) }
        return V4L2Capability(
            driver: Self.text(cap.driver), card: Self.text(cap.card), busInfo: Self.text(cap.bus_info),
            capabilities: V4L2Capabilities(rawValue: cap.capabilities),
            deviceCaps: V4L2Capabilities(rawValue: cap.device_caps))
    }

    public func v4l2EnumFormat(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32
    ) throws(KernelError) -> V4L2PixelFormat {
        var format: UInt32 = 0
        _ = try call("VIDIOC_ENUM_FMT") { cdmabuf_v4l2_enum_fmt(fd.rawValue, type.rawValue, index, &format) }
        return V4L2PixelFormat(rawValue: format)
    }

    private static func flat(_ format: V4L2Format) -> cdmabuf_v4l2_format {
        var out = cdmabuf_v4l2_format()
        out.type = format.type.rawValue
        out.width = format.width
        out.height = format.height
        out.pixelformat = format.pixelFormat.rawValue
        out.field = format.field.rawValue
        out.colorspace = format.colorspace.rawValue
        out.num_planes = UInt32(format.planes.count)
        withUnsafeMutableBytes(of: &out.planes) { raw in
            let planes = raw.bindMemory(to: cdmabuf_v4l2_plane_format.self)
            for (index, plane) in format.planes.prefix(planes.count).enumerated() {
                planes[index] = cdmabuf_v4l2_plane_format(bytesperline: plane.bytesPerLine, sizeimage: plane.sizeImage)
            }
        }
        return out
    }

    private static func typed(_ format: cdmabuf_v4l2_format) throws(KernelError) -> V4L2Format {
        guard let type = V4L2BufferType(rawValue: format.type) else { throw KernelError("VIDIOC_G_FMT", .EINVAL) }
        let planes = withUnsafeBytes(of: format.planes) { raw in
            Array(raw.bindMemory(to: cdmabuf_v4l2_plane_format.self).prefix(Int(format.num_planes)))
        }.map { V4L2Format.Plane(bytesPerLine: $0.bytesperline, sizeImage: $0.sizeimage) }
        return V4L2Format(
            type: type, width: format.width, height: format.height,
            pixelFormat: V4L2PixelFormat(rawValue: format.pixelformat), field: V4L2Field(rawValue: format.field),
            colorspace: V4L2Colorspace(rawValue: format.colorspace), planes: planes)
    }

    public func v4l2GetFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType) throws(KernelError) -> V4L2Format {
        var format = cdmabuf_v4l2_format()
        format.type = type.rawValue
        _ = try call("VIDIOC_G_FMT") { cdmabuf_v4l2_g_fmt(fd.rawValue, &format) }
        return try Self.typed(format)
    }

    public func v4l2SetFormat(
        _ fd: FileDescriptorNumber, _ format: V4L2Format, tryOnly: Bool
    ) throws(KernelError) -> V4L2Format {
        var flat = Self.flat(format)
        if tryOnly {
            _ = try call("VIDIOC_TRY_FMT") { cdmabuf_v4l2_try_fmt(fd.rawValue, &flat) }
        } else {
            _ = try call("VIDIOC_S_FMT") { cdmabuf_v4l2_s_fmt(fd.rawValue, &flat) }
        }
        return try Self.typed(flat)
    }

    public func v4l2RequestBuffers(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, count: UInt32
    )
        throws(KernelError) -> (count: UInt32, capabilities: V4L2BufferCapabilities)
    {
        var granted = count, capabilities: UInt32 = 0
        _ = try call("VIDIOC_REQBUFS") {
            cdmabuf_v4l2_reqbufs(fd.rawValue, type.rawValue, memory.rawValue, &granted, &capabilities)
        }
        return (granted, V4L2BufferCapabilities(rawValue: capabilities))
    }

    public func v4l2CreateBuffers(
        _ fd: FileDescriptorNumber, memory: V4L2Memory, format: V4L2Format, count: UInt32
    )
        throws(KernelError) -> V4L2CreatedBuffers
    {
        var flat = Self.flat(format)
        var index: UInt32 = 0, made = count, capabilities: UInt32 = 0, maximum: UInt32 = 0
        _ = try call("VIDIOC_CREATE_BUFS") {
            cdmabuf_v4l2_create_bufs(fd.rawValue, memory.rawValue, &flat, &index, &made, &capabilities, &maximum)
        }
        let caps = V4L2BufferCapabilities(rawValue: capabilities)
        return V4L2CreatedBuffers(
            index: index, count: made, capabilities: caps, maximum: caps.contains(.maxNumBuffers) ? maximum : nil)
    }

    public func v4l2RemoveBuffers(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, count: UInt32
    ) throws(KernelError) {
        _ = try call("VIDIOC_REMOVE_BUFS") { cdmabuf_v4l2_remove_bufs(fd.rawValue, type.rawValue, index, count) }
    }

    public func v4l2EnumFrameSize(
        _ fd: FileDescriptorNumber, pixelFormat: V4L2PixelFormat, index: UInt32
    ) throws(KernelError) -> V4L2FrameSize {
        var size = cdmabuf_v4l2_frame_size()
        _ = try call("VIDIOC_ENUM_FRAMESIZES") {
            cdmabuf_v4l2_enum_framesizes(fd.rawValue, pixelFormat.rawValue, index, &size)
        }
        if size.type == 1 { return .discrete(width: size.width, height: size.height) }
        return .stepwise(
            width: size.min_width...max(size.min_width, size.max_width), widthStep: size.step_width,
            height: size.min_height...max(size.min_height, size.max_height), heightStep: size.step_height)
    }

    public func v4l2EnumFrameInterval(
        _ fd: FileDescriptorNumber, pixelFormat: V4L2PixelFormat, width: UInt32, height: UInt32, index: UInt32
    )
        throws(KernelError) -> V4L2FrameInterval
    {
        var interval = cdmabuf_v4l2_frame_interval()
        _ = try call("VIDIOC_ENUM_FRAMEINTERVALS") {
            cdmabuf_v4l2_enum_frameintervals(fd.rawValue, pixelFormat.rawValue, width, height, index, &interval)
        }
        let first = V4L2Fraction(interval.numerator, interval.denominator)
        if interval.type == 1 { return .discrete(first) }
        return .stepwise(
            min: first, max: V4L2Fraction(interval.max_numerator, interval.max_denominator),
            step: V4L2Fraction(interval.step_numerator, interval.step_denominator))
    }

    public func v4l2GetFrameInterval(
        _ fd: FileDescriptorNumber, type: V4L2BufferType
    ) throws(KernelError) -> V4L2Fraction {
        var numerator: UInt32 = 0, denominator: UInt32 = 0
        _ = try call("VIDIOC_G_PARM") { cdmabuf_v4l2_g_parm(fd.rawValue, type.rawValue, &numerator, &denominator) }
        return V4L2Fraction(numerator, denominator)
    }

    public func v4l2SetFrameInterval(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, _ interval: V4L2Fraction
    ) throws(KernelError) -> V4L2Fraction {
        var numerator = interval.numerator, denominator = interval.denominator
        _ = try call("VIDIOC_S_PARM") { cdmabuf_v4l2_s_parm(fd.rawValue, type.rawValue, &numerator, &denominator) }
        return V4L2Fraction(numerator, denominator)
    }

    private static func flat(_ buffer: V4L2BufferInfo) -> cdmabuf_v4l2_buffer {
        var out = cdmabuf_v4l2_buffer()
        out.index = buffer.index
        out.type = buffer.type.rawValue
        out.memory = buffer.memory.rawValue
        out.flags = buffer.flags.rawValue
        out.field = buffer.field.rawValue
        out.num_planes = UInt32(buffer.planeCount)
        if buffer.timestamp != .zero {  // a 128-bit division, skipped for the usual zero
            let (seconds, attoseconds) = buffer.timestamp.components
            out.timestamp_sec = seconds
            out.timestamp_usec = attoseconds / 1_000_000_000_000
        }
        withUnsafeMutableBytes(of: &out.planes) { raw in
            let planes = raw.bindMemory(to: cdmabuf_v4l2_plane.self)
            for index in 0..<min(buffer.planeCount, planes.count) {
                let plane = buffer.plane(index)
                planes[index] = cdmabuf_v4l2_plane(
                    bytesused: plane.bytesUsed, length: plane.length, data_offset: plane.dataOffset,
                    mem_offset: plane.memoryOffset, fd: plane.fd)
            }
        }
        return out
    }

    private static func typed(_ buffer: cdmabuf_v4l2_buffer, _ operation: String) throws(KernelError) -> V4L2BufferInfo
    {
        guard let type = V4L2BufferType(rawValue: buffer.type), let memory = V4L2Memory(rawValue: buffer.memory) else {
            throw KernelError(operation, .EINVAL)
        }
        return withUnsafeBytes(of: buffer.planes) { raw in
            let planes = raw.bindMemory(to: cdmabuf_v4l2_plane.self)
            return V4L2BufferInfo(
                index: buffer.index, type: type, memory: memory, flags: V4L2BufferFlags(rawValue: buffer.flags),
                field: V4L2Field(rawValue: buffer.field), sequence: buffer.sequence,
                timestamp: .seconds(buffer.timestamp_sec) + .microseconds(buffer.timestamp_usec),
                planeCount: min(Int(buffer.num_planes), planes.count)
            ) { number in
                let plane = planes[number]
                return V4L2Plane(
                    bytesUsed: plane.bytesused, length: plane.length, dataOffset: plane.data_offset,
                    memoryOffset: plane.mem_offset, fd: plane.fd)
            }
        }
    }

    public func v4l2QueryBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, index: UInt32, planes: Int
    )
        throws(KernelError) -> V4L2BufferInfo
    {
        var buffer = Self.flat(
            V4L2BufferInfo(
                index: index, type: type, memory: memory, planes: Array(repeating: V4L2Plane(), count: planes)))
        _ = try call("VIDIOC_QUERYBUF") { cdmabuf_v4l2_querybuf(fd.rawValue, &buffer) }
        return try Self.typed(buffer, "VIDIOC_QUERYBUF")
    }

    public func v4l2QueueBuffer(
        _ fd: FileDescriptorNumber, _ buffer: V4L2BufferInfo
    ) throws(KernelError) -> V4L2BufferInfo {
        var flat = Self.flat(buffer)
        _ = try call("VIDIOC_QBUF") { cdmabuf_v4l2_qbuf(fd.rawValue, &flat) }
        return try Self.typed(flat, "VIDIOC_QBUF")
    }

    public func v4l2DequeueBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, planes: Int
    )
        throws(KernelError) -> V4L2BufferInfo?
    {
        var buffer = cdmabuf_v4l2_buffer()
        (buffer.type, buffer.memory, buffer.num_planes) = (type.rawValue, memory.rawValue, UInt32(planes))
        do {
            _ = try call("VIDIOC_DQBUF") { cdmabuf_v4l2_dqbuf(fd.rawValue, &buffer) }
        } catch  where error.errno == .EAGAIN {
            return nil
        }
        return try Self.typed(buffer, "VIDIOC_DQBUF")
    }

    public func v4l2ExportBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, plane: UInt32, flags: OpenFlags
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        FileDescriptorNumber(
            rawValue: try call("VIDIOC_EXPBUF") {
                cdmabuf_v4l2_expbuf(fd.rawValue, type.rawValue, index, plane, UInt32(bitPattern: flags.rawValue))
            })
    }

    public func v4l2Stream(_ fd: FileDescriptorNumber, type: V4L2BufferType, on: Bool) throws(KernelError) {
        if on {
            _ = try call("VIDIOC_STREAMON") { cdmabuf_v4l2_streamon(fd.rawValue, type.rawValue) }
        } else {
            _ = try call("VIDIOC_STREAMOFF") { cdmabuf_v4l2_streamoff(fd.rawValue, type.rawValue) }
        }
    }

    public func v4l2SetControl(_ fd: FileDescriptorNumber, id: V4L2ControlID, value: Int32) throws(KernelError) {
        _ = try call("VIDIOC_S_EXT_CTRLS") { cdmabuf_v4l2_s_ctrl(fd.rawValue, id.rawValue, Int64(value)) }
    }

    public func v4l2GetControl(_ fd: FileDescriptorNumber, id: V4L2ControlID) throws(KernelError) -> Int32 {
        var value: Int64 = 0
        _ = try call("VIDIOC_G_EXT_CTRLS") { cdmabuf_v4l2_g_ctrl(fd.rawValue, id.rawValue, &value) }
        return Int32(truncatingIfNeeded: value)
    }
}
