/// A DRM pixel format (`DRM_FORMAT_*`), by fourcc; any code passes through `rawValue`.
public struct DRMFormat: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let xrgb8888 = DRMFormat(rawValue: 0x3432_5258)  // 'XR24'
    public static let argb8888 = DRMFormat(rawValue: 0x3432_5241)  // 'AR24'
    public static let rgb565 = DRMFormat(rawValue: 0x3631_4752)  // 'RG16'
    public static let xrgb16161616 = DRMFormat(rawValue: 0x3834_5258)  // 'XR48'
    public static let argb16161616 = DRMFormat(rawValue: 0x3834_5241)  // 'AR48'
    public var description: String { FourCC.name(rawValue) }

    /// What vkms writes back (XRGB8888) for an RGB565 pixel: RGB565_to_argb_u16 (channel ×
    /// 65535 / 31 or 63, rounded), then argb_u16_to_XRGB8888 (÷ 257, rounded).
    public static func xrgb8888(fromRGB565 pixel: UInt16) -> UInt32 {
        func expand(_ value: UInt16, _ maximum: UInt32) -> UInt32 {
            let wide = (UInt32(value) * 65535 + maximum / 2) / maximum
            return (wide * 255 + 65535 / 2) / 65535
        }
        return expand(pixel >> 11 & 0x1f, 31) << 16 | expand(pixel >> 5 & 0x3f, 63) << 8 | expand(pixel & 0x1f, 31)
    }
}
