/// A control's id (`V4L2_CID_*`, or a driver's own); any id passes through `rawValue`.
public struct V4L2ControlID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "control 0x\(String(rawValue, radix: 16))" }
}

/// Standard V4L2 controls DmaBufKit sets (`V4L2_CID_*`).
public enum V4L2Control {
    @inlinable public static var horizontalFlip: V4L2ControlID { V4L2ControlID(rawValue: 0x0098_0914) }
    @inlinable public static var verticalFlip: V4L2ControlID { V4L2ControlID(rawValue: 0x0098_0915) }
}

/// vivid's own controls (drivers/media/test-drivers/vivid/vivid-ctrls.c), for pictures a
/// test can predict and for error injection.
public enum VividControl {
    static func id(_ offset: UInt32) -> V4L2ControlID { V4L2ControlID(rawValue: 0x00f0_0000 | 0xf000 + offset) }
    public static let testPattern = id(0)  // menu: 0 "75% Colorbar", …
    public static let osdTextMode = id(1)  // menu: 0 all, 1 counters only, 2 none
    public static let horizontalMovement = id(2)  // menu: 3 "No Movement"
    public static let verticalMovement = id(3)  // menu: 3 "No Movement"
    public static let disconnect = id(65)  // button
    public static let dequeueError = id(66)  // button: the next DQBUF returns a buffer with V4L2_BUF_FLAG_ERROR
    public static let startStreamingError = id(69)  // button: the next STREAMON fails with EINVAL (any value arms it)

    public static let osdCountersOnly: Int32 = 1
    public static let osdNone: Int32 = 2
    public static let noMovement: Int32 = 3
}

/// vivid's "75% Colorbar" test pattern (v4l2-tpg): white, yellow, cyan, green, magenta, red,
/// blue, black, as 8-bit RGB; each bar an eighth of the width.
public enum ColourBars {
    public static let seventyFivePercent: [(red: UInt8, green: UInt8, blue: UInt8)] = [
        (0xbf, 0xbf, 0xbf), (0xbf, 0xbf, 0x00), (0x00, 0xbf, 0xbf), (0x00, 0xbf, 0x00),
        (0xbf, 0x00, 0xbf), (0xbf, 0x00, 0x00), (0x00, 0x00, 0xbf), (0x00, 0x00, 0x00),
    ]
}
