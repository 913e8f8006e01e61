/// The parts of the V4L2 interface a stateful codec's client needs beyond buffers: events
/// (the decoder's source change, end of stream) and the commands that drain an encoder or a
/// decoder (Documentation/userspace-api/media/v4l/dev-encoder.rst, dev-decoder.rst).

/// `V4L2_EVENT_*` a codec client subscribes to.
public struct V4L2EventType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `V4L2_EVENT_EOS`: the last buffer of a drain was produced.
    @inlinable public static var endOfStream: V4L2EventType { V4L2EventType(rawValue: 2) }
    /// `V4L2_EVENT_SOURCE_CHANGE`: the decoder found the stream's format (or a new one).
    @inlinable public static var sourceChange: V4L2EventType { V4L2EventType(rawValue: 5) }
}

/// `struct v4l2_event`, the parts read here.
public struct V4L2Event: Hashable, Sendable {
    public var type: V4L2EventType
    /// For a source change: `V4L2_EVENT_SRC_CH_*` (0x1 resolution).
    public var changes: UInt32
    /// Events still queued after this one.
    public var pending: UInt32
    public var sequence: UInt32
    public init(type: V4L2EventType, changes: UInt32 = 0, pending: UInt32 = 0, sequence: UInt32 = 0) {
        (self.type, self.changes, self.pending, self.sequence) = (type, changes, pending, sequence)
    }
    public static let resolutionChanged: UInt32 = 0x1
}

/// Which side of a stateful codec a command is for: `VIDIOC_ENCODER_CMD` or `VIDIOC_DECODER_CMD`.
public enum V4L2CodecRole: Sendable {
    case encoder, decoder
}

/// `V4L2_ENC_CMD_*` / `V4L2_DEC_CMD_*` (the same numbers for start and stop).
public struct V4L2CodecCommand: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `V4L2_ENC_CMD_START` / `V4L2_DEC_CMD_START`: resume after a drain.
    @inlinable public static var start: V4L2CodecCommand { V4L2CodecCommand(rawValue: 0) }
    /// `V4L2_ENC_CMD_STOP` / `V4L2_DEC_CMD_STOP`: drain (finish what was queued, flag the last buffer).
    @inlinable public static var stop: V4L2CodecCommand { V4L2CodecCommand(rawValue: 1) }
}

public protocol V4L2CodecInterface {
    /// `VIDIOC_SUBSCRIBE_EVENT` of `type`; EINVAL for an event the node does not send.
    func v4l2SubscribeEvent(_ fd: FileDescriptorNumber, _ type: V4L2EventType) throws(KernelError)
    /// `VIDIOC_DQEVENT`: the oldest pending event, nil when none is (ENOENT).
    func v4l2DequeueEvent(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Event?
    /// `VIDIOC_ENCODER_CMD` / `VIDIOC_DECODER_CMD`. EINVAL for a command the role does not take;
    /// EBUSY for a STOP while a drain is under way.
    func v4l2CodecCommand(
        _ fd: FileDescriptorNumber, _ role: V4L2CodecRole, _ command: V4L2CodecCommand
    ) throws(KernelError)
}
