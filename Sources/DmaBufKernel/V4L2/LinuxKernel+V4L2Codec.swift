internal import CDmaBuf

extension LinuxKernel: V4L2CodecInterface {
    public func v4l2SubscribeEvent(_ fd: FileDescriptorNumber, _ type: V4L2EventType) throws(KernelError) {
        _ = try call("VIDIOC_SUBSCRIBE_EVENT") { cdmabuf_v4l2_subscribe_event(fd.rawValue, type.rawValue) }
    }

    public func v4l2DequeueEvent(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Event? {
        var event = cdmabuf_v4l2_event()
        do {
            _ = try call("VIDIOC_DQEVENT") { cdmabuf_v4l2_dqevent(fd.rawValue, &event) }
        } catch  where error.errno == .ENOENT {
            return nil
        }
        return V4L2Event(
            type: V4L2EventType(rawValue: event.type), changes: event.changes, pending: event.pending,
            sequence: event.sequence)
    }

    public func v4l2CodecCommand(
        _ fd: FileDescriptorNumber, _ role: V4L2CodecRole, _ command: V4L2CodecCommand
    ) throws(KernelError) {
        switch role {
        case .encoder:
            _ = try call("VIDIOC_ENCODER_CMD") { cdmabuf_v4l2_encoder_cmd(fd.rawValue, command.rawValue, 0) }
        case .decoder:
            _ = try call("VIDIOC_DECODER_CMD") { cdmabuf_v4l2_decoder_cmd(fd.rawValue, command.rawValue, 0) }
        }
    }
}
