/// The DRM/KMS part of the `Kernel` interface: one requirement per DRM ioctl the library uses,
/// with the kernel's own structures as plain Swift values. `LinuxKernel` answers through
/// libdrm; `SimulatedKernel` through its vkms- and vgem-like devices.

/// A DRM object id of one kind (`CRTCID`, `PlaneID`, …): the kinds cannot be mixed up.
public struct DRMID<Kind>: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "\(rawValue)" }
    /// The same id as a generic mode object, for property access.
    public var object: DRMObjectID { DRMObjectID(rawValue: rawValue) }
}
public enum DRMKinds {
    public enum CRTC {}
    public enum Connector {}
    public enum Encoder {}
    public enum Plane {}
    public enum Framebuffer {}
    public enum Property {}
    public enum Blob {}
    public enum Object {}
}
public typealias CRTCID = DRMID<DRMKinds.CRTC>
public typealias ConnectorID = DRMID<DRMKinds.Connector>
public typealias EncoderID = DRMID<DRMKinds.Encoder>
public typealias PlaneID = DRMID<DRMKinds.Plane>
public typealias FramebufferID = DRMID<DRMKinds.Framebuffer>
public typealias PropertyID = DRMID<DRMKinds.Property>
public typealias BlobID = DRMID<DRMKinds.Blob>
public typealias DRMObjectID = DRMID<DRMKinds.Object>

/// A GEM handle: per open DRM file, names one buffer object. Ownership lives in `GEMBuffer`.
public struct GEMHandle: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "GEM handle \(rawValue)" }
}

/// `DRM_MODE_OBJECT_*`: the object types properties hang on.
public enum DRMObjectType: UInt32, Sendable {
    case crtc = 0xcccc_cccc
    case connector = 0xc0c0_c0c0
    case encoder = 0xe0e0_e0e0
    case plane = 0xeeee_eeee
    case framebuffer = 0xfbfb_fbfb
    case any = 0
}

/// `DRM_IOCTL_VERSION`.
public struct DRMVersion: Hashable, Sendable {
    public var major: Int32, minor: Int32, patch: Int32
    public var name: String
    public var date: String
    public var description: String
    public init(major: Int32, minor: Int32, patch: Int32, name: String, date: String, description: String) {
        (self.major, self.minor, self.patch) = (major, minor, patch)
        (self.name, self.date, self.description) = (name, date, description)
    }
}

/// `DRM_CAP_*` (device capabilities) and `DRM_CLIENT_CAP_*` (what this client asks for).
public enum DRMCapability: UInt64, Sendable, CaseIterable {
    case dumbBuffer = 0x1
    case prime = 0x5
    case timestampMonotonic = 0x6
    case asyncPageFlip = 0x7
    case cursorWidth = 0x8
    case addFB2Modifiers = 0x10
    case crtcInVBlankEvent = 0x12
    case syncObject = 0x13
}
public enum DRMClientCapability: UInt64, Sendable {
    case stereo3D = 1
    case universalPlanes = 2
    case atomic = 3
    case aspectRatio = 4
    case writebackConnectors = 5
}
/// `DRM_PRIME_CAP_*` bits of `DRMCapability.prime`.
public struct DRMPrimeCapability: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable public static var importing: DRMPrimeCapability { DRMPrimeCapability(rawValue: 0x1) }
    @inlinable public static var exporting: DRMPrimeCapability { DRMPrimeCapability(rawValue: 0x2) }
}

/// `drm_mode_modeinfo`, field for field (it travels as the MODE_ID blob).
public struct DRMModeInfo: Hashable, Sendable, CustomStringConvertible {
    public var clock: UInt32
    public var hdisplay: UInt16, hsyncStart: UInt16, hsyncEnd: UInt16, htotal: UInt16, hskew: UInt16
    public var vdisplay: UInt16, vsyncStart: UInt16, vsyncEnd: UInt16, vtotal: UInt16, vscan: UInt16
    public var vrefresh: UInt32
    public var flags: UInt32
    public var type: UInt32
    public var name: String

    public init(
        clock: UInt32, hdisplay: UInt16, hsyncStart: UInt16, hsyncEnd: UInt16, htotal: UInt16, hskew: UInt16 = 0,
        vdisplay: UInt16, vsyncStart: UInt16, vsyncEnd: UInt16, vtotal: UInt16, vscan: UInt16 = 0,
        vrefresh: UInt32, flags: UInt32 = 0, type: UInt32 = 0, name: String
    ) {
        self.clock = clock
        (self.hdisplay, self.hsyncStart, self.hsyncEnd, self.htotal, self.hskew) = (
            hdisplay, hsyncStart, hsyncEnd, htotal, hskew
        )
        (self.vdisplay, self.vsyncStart, self.vsyncEnd, self.vtotal, self.vscan) = (
            vdisplay, vsyncStart, vsyncEnd, vtotal, vscan
        )
        (self.vrefresh, self.flags, self.type, self.name) = (vrefresh, flags, type, name)
    }

    /// `DRM_MODE_TYPE_PREFERRED`.
    public var isPreferred: Bool { type & 0x8 != 0 }
    public var description: String { "\(hdisplay)x\(vdisplay)@\(vrefresh)" }

    /// The 68-byte `struct drm_mode_modeinfo` (little-endian, as the kernel reads the blob).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        put(clock)
        for value in [hdisplay, hsyncStart, hsyncEnd, htotal, hskew, vdisplay, vsyncStart, vsyncEnd, vtotal, vscan] {
            put(value)
        }
        put(vrefresh); put(flags); put(type)
        var nameBytes = Array(name.utf8.prefix(31))
        nameBytes += [UInt8](repeating: 0, count: 32 - nameBytes.count)
        return out + nameBytes
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 68 else { return nil }
        var offset = 0
        func get<T: FixedWidthInteger>(_: T.Type) -> T {
            defer { offset += MemoryLayout<T>.size }
            return bytes[offset..<offset + MemoryLayout<T>.size].reversed().reduce(T.zero) { $0 << 8 | T($1) }
        }
        clock = get(UInt32.self)
        (hdisplay, hsyncStart, hsyncEnd, htotal, hskew) = (
            get(UInt16.self), get(UInt16.self), get(UInt16.self), get(UInt16.self), get(UInt16.self)
        )
        (vdisplay, vsyncStart, vsyncEnd, vtotal, vscan) = (
            get(UInt16.self), get(UInt16.self), get(UInt16.self), get(UInt16.self), get(UInt16.self)
        )
        (vrefresh, flags, type) = (get(UInt32.self), get(UInt32.self), get(UInt32.self))
        name = String(decoding: bytes[36...].prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// `DRM_IOCTL_MODE_GETRESOURCES`.
public struct DRMResources: Hashable, Sendable {
    public var framebuffers: [FramebufferID]
    public var crtcs: [CRTCID]
    public var connectors: [ConnectorID]
    public var encoders: [EncoderID]
    public var minWidth: UInt32, maxWidth: UInt32, minHeight: UInt32, maxHeight: UInt32
    public init(
        framebuffers: [FramebufferID], crtcs: [CRTCID], connectors: [ConnectorID], encoders: [EncoderID],
        minWidth: UInt32, maxWidth: UInt32, minHeight: UInt32, maxHeight: UInt32
    ) {
        (self.framebuffers, self.crtcs, self.connectors, self.encoders) = (framebuffers, crtcs, connectors, encoders)
        (self.minWidth, self.maxWidth, self.minHeight, self.maxHeight) = (minWidth, maxWidth, minHeight, maxHeight)
    }
}

/// `DRM_IOCTL_MODE_GETCONNECTOR`.
public struct DRMConnectorInfo: Hashable, Sendable {
    public var id: ConnectorID
    public var type: DRMConnectorType
    public var typeIndex: UInt32
    public var connection: DRMConnection
    public var encoders: [EncoderID]
    public var modes: [DRMModeInfo]
    public init(
        id: ConnectorID, type: DRMConnectorType, typeIndex: UInt32, connection: DRMConnection, encoders: [EncoderID],
        modes: [DRMModeInfo]
    ) {
        (self.id, self.type, self.typeIndex, self.connection, self.encoders, self.modes) = (
            id, type, typeIndex, connection, encoders, modes
        )
    }
}

/// `drm_connector_status`.
public struct DRMConnection: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var connected: DRMConnection { DRMConnection(rawValue: 1) }
    @inlinable public static var disconnected: DRMConnection { DRMConnection(rawValue: 2) }
    @inlinable public static var unknown: DRMConnection { DRMConnection(rawValue: 3) }
}

/// `DRM_MODE_CONNECTOR_*`: a value, not bits; the ones the library tells apart are named.
public struct DRMConnectorType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var virtual: DRMConnectorType { DRMConnectorType(rawValue: 15) }
    @inlinable public static var writeback: DRMConnectorType { DRMConnectorType(rawValue: 18) }

    /// The kernel's name (drm_connector_enum_list), as in `Virtual-1` or sysfs `card1-Writeback-1`.
    public var name: String {
        let names = [
            "Unknown", "VGA", "DVI-I", "DVI-D", "DVI-A", "Composite", "SVIDEO", "LVDS", "Component", "DIN", "DP",
            "HDMI-A", "HDMI-B", "TV", "eDP", "Virtual", "DSI", "DPI", "Writeback", "SPI", "USB",
        ]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "type \(rawValue)"
    }
}

/// `DRM_MODE_ENCODER_*`. A writeback connector's encoder is a virtual one.
public struct DRMEncoderType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var virtual: DRMEncoderType { DRMEncoderType(rawValue: 5) }

    /// The kernel's name (drm_encoder_enum_list).
    public var name: String {
        let names = ["None", "DAC", "TMDS", "LVDS", "TV", "Virtual", "DSI", "DP MST", "DPI"]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "type \(rawValue)"
    }
}

/// `DRM_IOCTL_MODE_GETENCODER`.
public struct DRMEncoderInfo: Hashable, Sendable {
    public var id: EncoderID
    public var type: DRMEncoderType
    /// Bit i set: usable with the i-th CRTC of the resources.
    public var possibleCRTCs: UInt32
    /// Bit i set: can drive the same CRTC as the i-th encoder at once (itself included).
    public var possibleClones: UInt32
    public init(id: EncoderID, type: DRMEncoderType, possibleCRTCs: UInt32, possibleClones: UInt32) {
        (self.id, self.type, self.possibleCRTCs, self.possibleClones) = (id, type, possibleCRTCs, possibleClones)
    }
}

/// `DRM_IOCTL_MODE_GETPLANE`.
public struct DRMPlaneInfo: Hashable, Sendable {
    public var id: PlaneID
    public var possibleCRTCs: UInt32
    public var crtc: CRTCID?
    public var framebuffer: FramebufferID?
    public var formats: [DRMFormat]
    public init(id: PlaneID, possibleCRTCs: UInt32, crtc: CRTCID?, framebuffer: FramebufferID?, formats: [DRMFormat]) {
        (self.id, self.possibleCRTCs, self.crtc, self.framebuffer, self.formats) = (
            id, possibleCRTCs, crtc, framebuffer, formats
        )
    }
}

/// `DRM_IOCTL_MODE_GETPROPERTY`.
public struct DRMPropertyInfo: Hashable, Sendable {
    public var id: PropertyID
    public var name: String
    public var flags: DRMPropertyFlags
    /// Range bounds, or the values of an enum/bitmask (paired with `enumNames`).
    public var values: [UInt64]
    public var enumNames: [String]
    public init(id: PropertyID, name: String, flags: DRMPropertyFlags, values: [UInt64] = [], enumNames: [String] = [])
    {
        (self.id, self.name, self.flags, self.values, self.enumNames) = (id, name, flags, values, enumNames)
    }
    public var isImmutable: Bool { flags.contains(.immutable) }
    /// The value of an enum entry by name ("Primary" of "type", …).
    public func enumValue(_ name: String) -> UInt64? { enumNames.firstIndex(of: name).map { values[$0] } }
}

/// `DRM_MODE_PROP_*`: the property's kind (legacy bits and the extended type in bits 6–11) and
/// whether userspace may set it.
public struct DRMPropertyFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var range: DRMPropertyFlags { DRMPropertyFlags(rawValue: 0x2) }
    @inlinable public static var immutable: DRMPropertyFlags { DRMPropertyFlags(rawValue: 0x4) }
    @inlinable public static var enumeration: DRMPropertyFlags { DRMPropertyFlags(rawValue: 0x8) }
    @inlinable public static var blob: DRMPropertyFlags { DRMPropertyFlags(rawValue: 0x10) }
    /// `DRM_MODE_PROP_OBJECT` (extended type 1 << 6).
    @inlinable public static var object: DRMPropertyFlags { DRMPropertyFlags(rawValue: 0x40) }
}

/// One property change of an atomic request.
public struct DRMAtomicProperty: Hashable, Sendable {
    public var object: DRMObjectID
    public var property: PropertyID
    public var value: UInt64
    public init(object: DRMObjectID, property: PropertyID, value: UInt64) {
        (self.object, self.property, self.value) = (object, property, value)
    }
}

/// `DRM_MODE_ATOMIC_*` and `DRM_MODE_PAGE_FLIP_EVENT` flags of an atomic commit.
public struct DRMAtomicFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var pageFlipEvent: DRMAtomicFlags { DRMAtomicFlags(rawValue: 0x01) }
    @inlinable public static var nonBlock: DRMAtomicFlags { DRMAtomicFlags(rawValue: 0x0200) }
    @inlinable public static var testOnly: DRMAtomicFlags { DRMAtomicFlags(rawValue: 0x0100) }
    @inlinable public static var allowModeset: DRMAtomicFlags { DRMAtomicFlags(rawValue: 0x0400) }
}

/// `DRM_IOCTL_MODE_ADDFB2`: up to four planes (handles, pitches, offsets, modifiers).
public struct DRMFramebufferRequest: Hashable, Sendable {
    public var width: UInt32
    public var height: UInt32
    public var format: DRMFormat
    // Always four entries, whatever is assigned (libdrm reads four): shorter arrays are padded with 0, longer ones cut.
    public var handles: [GEMHandle] { didSet { handles = Self.four(handles) } }
    public var pitches: [UInt32] { didSet { pitches = Self.four(pitches) } }
    public var offsets: [UInt32] { didSet { offsets = Self.four(offsets) } }
    /// Per-plane modifiers; nil sends no `DRM_MODE_FB_MODIFIERS` flag.
    public var modifiers: [UInt64]? { didSet { modifiers = modifiers.map(Self.four) } }
    public init(
        width: UInt32, height: UInt32, format: DRMFormat, handles: [GEMHandle], pitches: [UInt32],
        offsets: [UInt32] = [0, 0, 0, 0], modifiers: [UInt64]? = nil
    ) {
        (self.width, self.height, self.format) = (width, height, format)
        (self.handles, self.pitches, self.offsets) = (Self.four(handles), Self.four(pitches), Self.four(offsets))
        self.modifiers = modifiers.map(Self.four)
    }

    static func four<T: FixedWidthInteger>(_ values: [T]) -> [T] {
        Array((values + [T](repeating: 0, count: 4)).prefix(4))
    }
    static func four(_ handles: [GEMHandle]) -> [GEMHandle] {
        Array((handles + [GEMHandle](repeating: GEMHandle(rawValue: 0), count: 4)).prefix(4))
    }
}

/// `DRM_IOCTL_MODE_CREATE_DUMB`'s answer.
public struct DRMDumbBuffer: Hashable, Sendable {
    public var handle: GEMHandle
    public var pitch: UInt32
    public var size: UInt64
    public init(handle: GEMHandle, pitch: UInt32, size: UInt64) {
        (self.handle, self.pitch, self.size) = (handle, pitch, size)
    }
}

/// A DRM event read from the device fd (`drm_event_vblank`: vblank or flip completion).
public struct DRMEvent: Hashable, Sendable {
    public var type: DRMEventType
    public var userData: UInt64
    public var seconds: UInt32, microseconds: UInt32
    public var sequence: UInt32
    public var crtc: CRTCID
    public init(
        type: DRMEventType, userData: UInt64, seconds: UInt32, microseconds: UInt32, sequence: UInt32, crtc: CRTCID
    ) {
        (self.type, self.userData, self.seconds, self.microseconds, self.sequence, self.crtc) = (
            type, userData, seconds, microseconds, sequence, crtc
        )
    }
}

/// `DRM_EVENT_*`.
public struct DRMEventType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var vblank: DRMEventType { DRMEventType(rawValue: 1) }
    @inlinable public static var flipComplete: DRMEventType { DRMEventType(rawValue: 2) }
    @inlinable public static var crtcSequence: DRMEventType { DRMEventType(rawValue: 3) }
}

public protocol DRMInterface {
    func drmVersion(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMVersion
    func drmCapability(_ fd: FileDescriptorNumber, _ capability: UInt64) throws(KernelError) -> UInt64
    func drmSetClientCapability(_ fd: FileDescriptorNumber, _ capability: UInt64, value: UInt64) throws(KernelError)

    func drmCreateDumb(
        _ fd: FileDescriptorNumber, width: UInt32, height: UInt32, bitsPerPixel: UInt32
    ) throws(KernelError) -> DRMDumbBuffer
    func drmMapDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) -> UInt64
    func drmDestroyDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError)
    func drmGEMClose(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError)
    func drmPrimeHandleToFD(
        _ fd: FileDescriptorNumber, _ handle: GEMHandle, flags: PrimeFlags
    ) throws(KernelError) -> FileDescriptorNumber
    func drmPrimeFDToHandle(_ fd: FileDescriptorNumber, dmaBuf: FileDescriptorNumber) throws(KernelError) -> GEMHandle

    func drmResources(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMResources
    func drmConnector(_ fd: FileDescriptorNumber, _ id: ConnectorID) throws(KernelError) -> DRMConnectorInfo
    func drmEncoder(_ fd: FileDescriptorNumber, _ id: EncoderID) throws(KernelError) -> DRMEncoderInfo
    func drmPlanes(_ fd: FileDescriptorNumber) throws(KernelError) -> [PlaneID]
    func drmPlane(_ fd: FileDescriptorNumber, _ id: PlaneID) throws(KernelError) -> DRMPlaneInfo
    func drmObjectProperties(
        _ fd: FileDescriptorNumber, _ object: DRMObjectID, type: DRMObjectType
    ) throws(KernelError) -> [PropertyID: UInt64]
    func drmProperty(_ fd: FileDescriptorNumber, _ id: PropertyID) throws(KernelError) -> DRMPropertyInfo
    func drmCreateBlob(_ fd: FileDescriptorNumber, _ bytes: [UInt8]) throws(KernelError) -> BlobID
    func drmBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) -> [UInt8]
    func drmDestroyBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError)

    func drmAddFramebuffer(
        _ fd: FileDescriptorNumber, _ request: DRMFramebufferRequest
    ) throws(KernelError) -> FramebufferID
    func drmRemoveFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError)
    /// `DRM_IOCTL_MODE_CLOSEFB` (Linux 6.8): like RMFB, but a plane showing the framebuffer
    /// keeps it until it shows another. EINVAL on kernels without it (drm_ioctl's answer to an
    /// unknown core ioctl).
    func drmCloseFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError)
    /// `DRM_IOCTL_MODE_ATOMIC`. Values of `OUT_FENCE_PTR` and `WRITEBACK_OUT_FENCE_PTR` are
    /// addresses of an `Int32` the kernel fills with a sync_file fd. An empty request is not
    /// sent at all (libdrm returns success without the ioctl).
    func drmAtomicCommit(
        _ fd: FileDescriptorNumber, _ properties: [DRMAtomicProperty], flags: DRMAtomicFlags, userData: UInt64)
        throws(KernelError)
    /// `DRM_IOCTL_CRTC_GET_SEQUENCE`: the CRTC's vblank count now (the counter flip events
    /// carry, 32 bits of it); EINVAL once the CRTC was switched off (drm_crtc_vblank_off).
    func drmCRTCSequence(_ fd: FileDescriptorNumber, _ crtc: CRTCID) throws(KernelError) -> UInt64
    /// Reads the pending events of a DRM fd; [] when none is pending on a non-blocking fd.
    func drmReadEvents(_ fd: FileDescriptorNumber) throws(KernelError) -> [DRMEvent]
}

/// `DRM_CLOEXEC` and `DRM_RDWR` for PRIME export.
public struct PrimeFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var closeOnExec: PrimeFlags { PrimeFlags(rawValue: 0o2000000) }
    @inlinable public static var readWrite: PrimeFlags { PrimeFlags(rawValue: 0o2) }
}

extension KernelPaths {
    public static let drmDirectory = "/dev/dri"
}
