/// A four-character code as V4L2 and DRM spell pixel formats: four ASCII bytes in a `UInt32`,
/// the first in the low byte. The two namespaces are separate (`V4L2PixelFormat`,
/// `DRMFormat`); this only names a code.
public enum FourCC {
    /// "RGB3" for 0x33424752; big-endian variants (bit 31) get "-BE".
    public static func name(_ code: UInt32) -> String {
        let bigEndian = code & 0x8000_0000 != 0
        let text = String(
            decoding: (0..<4).map { UInt8(truncatingIfNeeded: (code & 0x7fff_ffff) >> ($0 * 8)) }, as: UTF8.self)
        return bigEndian ? text + "-BE" : text
    }
}
