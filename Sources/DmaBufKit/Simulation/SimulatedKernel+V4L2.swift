/// V4L2 on the simulated kernel. No video device is modelled yet (no /dev/video* opens), so
/// every V4L2 ioctl meets a file that is not a video device: ENOTTY, or EBADF for a closed fd.
extension SimulatedKernel {
    private func notVideo<T>(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> T {
        try requireOpen(fd, operation)
        throw KernelError(operation, .ENOTTY)
    }

    public func v4l2QueryCapability(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Capability { try notVideo(fd, "VIDIOC_QUERYCAP") }
    public func v4l2EnumFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32) throws(KernelError) -> UInt32 { try notVideo(fd, "VIDIOC_ENUM_FMT") }
    public func v4l2GetFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType) throws(KernelError) -> V4L2Format { try notVideo(fd, "VIDIOC_G_FMT") }
    public func v4l2SetFormat(_ fd: FileDescriptorNumber, _ format: V4L2Format, tryOnly: Bool) throws(KernelError) -> V4L2Format {
        try notVideo(fd, tryOnly ? "VIDIOC_TRY_FMT" : "VIDIOC_S_FMT")
    }
    public func v4l2RequestBuffers(_ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, count: UInt32) throws(KernelError) -> (count: UInt32, capabilities: UInt32) {
        try notVideo(fd, "VIDIOC_REQBUFS")
    }
    public func v4l2QueryBuffer(_ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, index: UInt32, planes: Int) throws(KernelError) -> V4L2BufferInfo {
        try notVideo(fd, "VIDIOC_QUERYBUF")
    }
    public func v4l2QueueBuffer(_ fd: FileDescriptorNumber, _ buffer: V4L2BufferInfo) throws(KernelError) -> V4L2BufferInfo { try notVideo(fd, "VIDIOC_QBUF") }
    public func v4l2DequeueBuffer(_ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, planes: Int) throws(KernelError) -> V4L2BufferInfo? {
        try notVideo(fd, "VIDIOC_DQBUF")
    }
    public func v4l2ExportBuffer(_ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, plane: UInt32, flags: UInt32) throws(KernelError) -> FileDescriptorNumber {
        try notVideo(fd, "VIDIOC_EXPBUF")
    }
    public func v4l2Stream(_ fd: FileDescriptorNumber, type: V4L2BufferType, on: Bool) throws(KernelError) {
        try notVideo(fd, on ? "VIDIOC_STREAMON" : "VIDIOC_STREAMOFF") as Void
    }
    public func v4l2SetControl(_ fd: FileDescriptorNumber, id: UInt32, value: Int32) throws(KernelError) { try notVideo(fd, "VIDIOC_S_EXT_CTRLS") as Void }
    public func v4l2GetControl(_ fd: FileDescriptorNumber, id: UInt32) throws(KernelError) -> Int32 { try notVideo(fd, "VIDIOC_G_EXT_CTRLS") }
    public func v4l2SetFrameInterval(_ fd: FileDescriptorNumber, type: V4L2BufferType, numerator: UInt32, denominator: UInt32) throws(KernelError) {
        try notVideo(fd, "VIDIOC_S_PARM") as Void
    }
}
