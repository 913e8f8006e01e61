import DmaBufKernel

/// What a KMS device has: planes with the formats and modifiers they scan out (IN_FORMATS),
/// connectors with their modes, encoders and CRTCs.
public struct PlaneDescription: Hashable, Sendable {
    public enum Kind: String, Sendable { case overlay = "Overlay", primary = "Primary", cursor = "Cursor" }
    public var id: PlaneID
    public var kind: Kind?
    public var possibleCRTCs: UInt32
    public var formats: [DRMFormat]
    /// Modifiers per format from IN_FORMATS; empty when the plane has no such property.
    public var modifiers: [DRMFormat: [UInt64]]
}

public struct KMSInventory: Sendable {
    public var crtcs: [CRTCID]
    public var encoders: [DRMEncoderInfo]
    public var connectors: [DRMConnectorInfo]
    public var planes: [PlaneDescription]
    /// What each writeback connector can write (its WRITEBACK_PIXEL_FORMATS).
    public var writebackFormats: [ConnectorID: [DRMFormat]]

    /// Reads the device's KMS objects. Asks for universal planes (to see primary and cursor
    /// planes) and writeback connectors where the driver has them.
    public init(device: borrowing DRMDevice) throws(KernelError) {
        try device.enable(.universalPlanes)
        try? device.enable(.atomic)
        try? device.enable(.writebackConnectors)
        let kernel = device.kernel, fd = device.fd
        let inventory = try device.descriptor.perform { _, _ throws(KernelError) in
            let resources = try kernel.drmResources(fd)
            let encoders = try resources.encoders.map { id throws(KernelError) in try kernel.drmEncoder(fd, id) }
            let connectors = try resources.connectors.map { id throws(KernelError) in try kernel.drmConnector(fd, id) }
            var planes: [PlaneDescription] = []
            for id in try kernel.drmPlanes(fd) {
                let plane = try kernel.drmPlane(fd, id)
                var description = PlaneDescription(
                    id: id, possibleCRTCs: plane.possibleCRTCs, formats: plane.formats, modifiers: [:])
                for (property, value) in try kernel.drmObjectProperties(fd, id.object, type: .plane) {
                    let info = try kernel.drmProperty(fd, property)
                    if info.name == "type" {
                        description.kind = info.enumNames.indices.first { info.values[$0] == value }.flatMap {
                            PlaneDescription.Kind(rawValue: info.enumNames[$0])
                        }
                    } else if info.name == "IN_FORMATS", value != 0 {
                        description.modifiers = Self.parseInFormats(
                            try kernel.drmBlob(fd, BlobID(rawValue: UInt32(value))))
                    }
                }
                planes.append(description)
            }
            var writebackFormats: [ConnectorID: [DRMFormat]] = [:]
            for connector in connectors where connector.type == .writeback {
                for (property, value) in try kernel.drmObjectProperties(fd, connector.id.object, type: .connector)
                where value != 0 {
                    guard try kernel.drmProperty(fd, property).name == "WRITEBACK_PIXEL_FORMATS" else { continue }
                    let bytes = try kernel.drmBlob(fd, BlobID(rawValue: UInt32(value)))
                    writebackFormats[connector.id] = stride(from: 0, to: bytes.count - 3, by: 4).map { at in
                        DRMFormat(rawValue: bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
                    }
                }
            }
            return (resources.crtcs, encoders, connectors, planes, writebackFormats)
        }
        (crtcs, encoders, connectors, planes, writebackFormats) = inventory
    }

    /// `struct drm_format_modifier_blob`: a header, the formats, then 24-byte entries of
    /// (64-format bitmask, its offset into the format list, modifier).
    static func parseInFormats(_ bytes: [UInt8]) -> [DRMFormat: [UInt64]] {
        func u32(_ at: Int) -> UInt32 {
            at + 4 <= bytes.count ? bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } : 0
        }
        func u64(_ at: Int) -> UInt64 {
            at + 8 <= bytes.count ? bytes[at..<at + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } : 0
        }
        let formatCount = Int(u32(8)), formatsAt = Int(u32(12)), modifierCount = Int(u32(16)),
            modifiersAt = Int(u32(20))
        let formats = (0..<formatCount).map { DRMFormat(rawValue: u32(formatsAt + 4 * $0)) }
        var result: [DRMFormat: [UInt64]] = [:]
        for entry in 0..<modifierCount {
            let at = modifiersAt + 24 * entry
            let mask = u64(at), offset = Int(u32(at + 8)), modifier = u64(at + 16)
            for bit in 0..<64 where mask & (1 << UInt64(bit)) != 0 && offset + bit < formats.count {
                result[formats[offset + bit], default: []].append(modifier)
            }
        }
        return result
    }
}
