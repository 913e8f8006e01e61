import DmaBufKernel

/// Events and codec commands on the simulated nodes (vicodec_subscribe_event, v4l2_event_dequeue,
/// vicodec_encoder_cmd / vicodec_decoder_cmd).
extension SimulatedKernel: V4L2CodecInterface {
    public func v4l2SubscribeEvent(_ fd: FileDescriptorNumber, _ type: V4L2EventType) throws(KernelError) {
        let operation = "VIDIOC_SUBSCRIBE_EVENT"
        let file = try video(fd, operation)
        try locked { () throws(KernelError) in
            switch (file.context.codecRole, type) {
            case (.decoder, .sourceChange), (.decoder, .endOfStream), (.encoder, .endOfStream):
                file.context.codec?.subscriptions.insert(type.rawValue)
            case (nil, .sourceChange) where file.device.role == .capture:
                break  // vivid_subscribe_event: its inputs never change mid-run here, so nothing is sent
            default:
                throw KernelError(operation, .EINVAL)  // v4l2_ctrl_subscribe_event: not a control event
            }
        }
    }

    public func v4l2DequeueEvent(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Event? {
        let file = try video(fd, "VIDIOC_DQEVENT")
        return locked {
            guard let codec = file.context.codec, !codec.events.isEmpty else { return nil }
            var event = codec.events.removeFirst()
            event.pending = UInt32(codec.events.count)
            return event
        }
    }

    public func v4l2CodecCommand(
        _ fd: FileDescriptorNumber, _ role: V4L2CodecRole, _ command: V4L2CodecCommand
    ) throws(KernelError) {
        let operation = role == .encoder ? "VIDIOC_ENCODER_CMD" : "VIDIOC_DECODER_CMD"
        let file = try video(fd, operation)
        // v4l2_disable_ioctl: an encoder has no DECODER_CMD, a decoder no ENCODER_CMD; vim2m neither.
        guard file.context.codecRole == role else { throw KernelError(operation, .ENOTTY) }
        try locked { () throws(KernelError) in try vicodec.command(file.context, command, operation) }
    }
}
