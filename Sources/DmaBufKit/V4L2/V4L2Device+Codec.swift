import DmaBufKernel

extension V4L2Device {
    /// `VIDIOC_SUBSCRIBE_EVENT`: `event` is queued on this open from now on (poll says
    /// `.priority` while one is pending).
    public func subscribe(_ event: V4L2EventType) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2SubscribeEvent(fd, event) }
    }

    /// `VIDIOC_DQEVENT`: the oldest pending event, nil when none is.
    public func nextEvent() throws(KernelError) -> V4L2Event? {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2DequeueEvent(fd) }
    }

    /// `VIDIOC_ENCODER_CMD` / `VIDIOC_DECODER_CMD`: `.stop` drains (the result of the last
    /// buffer queued comes flagged `.last`), `.start` resumes after a drain.
    public func send(_ command: V4L2CodecCommand, as role: V4L2CodecRole) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2CodecCommand(fd, role, command) }
    }
}
