/// The parts of the V4L2 interface that describe where a node's video comes from or goes to
/// (its inputs and outputs, their timings) and what its controls are: what a rig sets to route
/// one device's output back into a capture (vivid's loopback), found by name, not by id.

/// Which side of a node a connector is on: `VIDIOC_ENUMINPUT`/`S_INPUT` or `ENUMOUTPUT`/`S_OUTPUT`.
public enum V4L2ConnectorDirection: Sendable {
    case input, output
}

/// `struct v4l2_input` / `struct v4l2_output`: one connector of a node.
public struct V4L2Connector: Hashable, Sendable {
    public var index: UInt32
    public var name: String
    /// `V4L2_INPUT_TYPE_*` (1 tuner, 2 camera, 3 touch) or `V4L2_OUTPUT_TYPE_*` (1 modulator, 2 analog).
    public var type: UInt32
    /// `V4L2_IN_CAP_*` / `V4L2_OUT_CAP_*`: 0x2 DV timings (HDMI), 0x4 standards (analog TV).
    public var capabilities: UInt32
    public init(index: UInt32, name: String, type: UInt32, capabilities: UInt32) {
        (self.index, self.name, self.type, self.capabilities) = (index, name, type, capabilities)
    }
    /// The connector carries digital video timings (HDMI and the like).
    public var hasDVTimings: Bool { capabilities & 0x2 != 0 }
}

/// `V4L2_CTRL_TYPE_*`.
public struct V4L2ControlType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var integer: V4L2ControlType { V4L2ControlType(rawValue: 1) }
    @inlinable public static var boolean: V4L2ControlType { V4L2ControlType(rawValue: 2) }
    @inlinable public static var menu: V4L2ControlType { V4L2ControlType(rawValue: 3) }
    @inlinable public static var button: V4L2ControlType { V4L2ControlType(rawValue: 4) }
}

/// `struct v4l2_query_ext_ctrl`, without the array fields.
public struct V4L2ControlInfo: Hashable, Sendable {
    public var id: V4L2ControlID
    public var type: V4L2ControlType
    public var name: String
    public var minimum: Int64
    public var maximum: Int64
    public var step: UInt64
    public var defaultValue: Int64
    /// `V4L2_CTRL_FLAG_*` (0x1 disabled, 0x4 read-only, 0x10 inactive, …).
    public var flags: UInt32
    public init(
        id: V4L2ControlID, type: V4L2ControlType, name: String, minimum: Int64, maximum: Int64, step: UInt64 = 1,
        defaultValue: Int64, flags: UInt32 = 0
    ) {
        (self.id, self.type, self.name, self.minimum, self.maximum) = (id, type, name, minimum, maximum)
        (self.step, self.defaultValue, self.flags) = (step, defaultValue, flags)
    }
    /// `V4L2_CTRL_FLAG_NEXT_CTRL`: asked with an id, QUERY_EXT_CTRL answers the next control after it.
    public static let nextControlFlag: UInt32 = 0x8000_0000
}

public protocol V4L2ConnectorInterface {
    /// `VIDIOC_QUERY_EXT_CTRL` of `id`, or with `next` of the first control after it (start at
    /// id 0); EINVAL past the last one.
    func v4l2QueryControl(
        _ fd: FileDescriptorNumber, id: V4L2ControlID, next: Bool
    ) throws(KernelError)
        -> V4L2ControlInfo
    /// `VIDIOC_QUERYMENU`: the name of item `index` of a menu control; EINVAL for an item the
    /// driver skips or past the last.
    func v4l2QueryMenu(_ fd: FileDescriptorNumber, id: V4L2ControlID, index: UInt32) throws(KernelError) -> String
    /// `VIDIOC_ENUMINPUT` / `VIDIOC_ENUMOUTPUT` at `index`; EINVAL past the last one.
    func v4l2EnumConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection, index: UInt32
    ) throws(KernelError) -> V4L2Connector
    /// `VIDIOC_G_INPUT` / `VIDIOC_G_OUTPUT`: the connector in use.
    func v4l2GetConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection
    ) throws(KernelError)
        -> UInt32
    /// `VIDIOC_S_INPUT` / `VIDIOC_S_OUTPUT`; EBUSY while the queue has buffers.
    func v4l2SetConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection, index: UInt32
    ) throws(KernelError)
    /// `VIDIOC_G_DV_TIMINGS`: the frame size of the connector's digital video timings
    /// (ENODATA or ENOTTY where it has none).
    func v4l2GetDVTimingsSize(_ fd: FileDescriptorNumber) throws(KernelError) -> (width: UInt32, height: UInt32)
}
