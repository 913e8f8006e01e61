import DmaBufKernel

/// The simulated DRM devices: a vgem-like GEM-only device and a vkms-like KMS device with one
/// CRTC, a primary and a cursor plane, a virtual connector and a writeback connector. Object
/// and property ids, modes and checks follow vkms on Linux 6.1 (unchanged in 6.12 for what is modelled).

/// A GEM object: memory (pieces of host memfds, owned by this object) and where it came from.
final class SimulatedGEM {
    let segments: [SimulatedSegment]
    let size: UInt64
    /// False for imports of dma-bufs without vmap (udmabuf on 6.1): vkms cannot read them.
    let vmappable: Bool
    /// The dma-buf it was imported from, or exported as: PRIME hands out one handle per buffer.
    var dmaBuf: ObjectIdentifier?
    let dumb: Bool

    init(segments: [SimulatedSegment], size: UInt64, vmappable: Bool, dumb: Bool) {
        (self.segments, self.size, self.vmappable, self.dumb) = (segments, size, vmappable, dumb)
    }
}

struct SimulatedFramebuffer {
    let request: DRMFramebufferRequest
    let objects: [SimulatedGEM]
    /// The open file that created it: its framebuffers go when it closes. Nil after CLOSEFB
    /// while a plane still shows it (it goes when no plane does).
    var owner: ObjectIdentifier?
}

/// Per open file: GEM handles, client caps and pending events.
final class SimulatedDRMFile {
    let device: SimulatedDRMDevice
    var handles: [UInt32: SimulatedGEM] = [:]
    var nextHandle: UInt32 = 1
    var atomic = false
    var universalPlanes = false
    var writebackConnectors = false
    var events: [DRMEvent] = []

    init(device: SimulatedDRMDevice) { self.device = device }

    func add(_ object: SimulatedGEM) -> GEMHandle {
        let handle = nextHandle
        nextHandle += 1
        handles[handle] = object
        return GEMHandle(rawValue: handle)
    }

    /// The handle this file already has for a dma-buf, if any (drm_prime_lookup_buf_handle).
    func handle(for dmaBuf: ObjectIdentifier) -> GEMHandle? {
        handles.first { $0.value.dmaBuf == dmaBuf }.map { GEMHandle(rawValue: $0.key) }
    }
}

/// The KMS state of a vkms-like device: what atomic commits change.
struct SimulatedKMSState {
    var active = false
    var mode: DRMModeInfo?
    var modeBlob: UInt32 = 0
    var planeFB: [UInt32: UInt32] = [:]
    var planeCRTC: [UInt32: UInt32] = [:]
    var planeRect: [UInt32: [String: UInt64]] = [:]
    var connectorCRTC: [UInt32: UInt32] = [:]
}

final class SimulatedDRMDevice {
    let driver: String
    var isKMS: Bool { driver == "vkms" }
    var framebuffers: [UInt32: SimulatedFramebuffer] = [:]
    var blobs: [UInt32: (bytes: [UInt8], owner: ObjectIdentifier?)] = [:]
    var nextObjectID: UInt32 = 100
    var kms = SimulatedKMSState()
    var frame: UInt32 = 0
    /// The CRTC was switched off: drm_crtc_vblank_off holds its vblank counter.
    var vblankOff = false
    /// Extra vblanks the next flip waits (an injected late flip).
    var lateFlip: UInt32 = 0
    let fenceContext = UInt64.random(in: 1 << 40..<1 << 41)
    var fenceSeqno: UInt64 = 0

    // vkms 6.1's object ids.
    static let primaryPlane: UInt32 = 31, cursorPlane: UInt32 = 33, crtc: UInt32 = 35
    static let connector: UInt32 = 36, encoder: UInt32 = 37, writebackEncoder: UInt32 = 38,
        writebackConnector: UInt32 = 43
    static let writebackFormatsBlob: UInt32 = 42, primaryInFormatsBlob: UInt32 = 32, cursorInFormatsBlob: UInt32 = 34

    /// vkms_formats (primary plane) and vkms_wb_formats.
    static let planeFormats: [DRMFormat] = [.xrgb8888, .xrgb16161616, .rgb565]
    static let cursorFormats: [DRMFormat] = [.argb8888, .xrgb8888, .xrgb16161616, .argb16161616, .rgb565]
    static let writebackFormats: [DRMFormat] = [.xrgb8888, .xrgb16161616, .argb16161616, .rgb565]

    /// Property ids and names; the id is what userspace sees.
    static let propertyIDs: [String: UInt32] = [
        "type": 7, "SRC_X": 10, "SRC_Y": 11, "SRC_W": 12, "SRC_H": 13, "CRTC_X": 14, "CRTC_Y": 15, "CRTC_W": 16,
        "CRTC_H": 17, "FB_ID": 18, "CRTC_ID": 20, "ACTIVE": 22, "MODE_ID": 23, "OUT_FENCE_PTR": 21,
        "WRITEBACK_FB_ID": 39, "WRITEBACK_PIXEL_FORMATS": 40, "WRITEBACK_OUT_FENCE_PTR": 41, "IN_FORMATS": 30,
    ]
    static func propertyName(_ id: UInt32) -> String? { propertyIDs.first { $0.value == id }?.key }

    static let planeProperties = [
        "type", "IN_FORMATS", "FB_ID", "CRTC_ID", "SRC_X", "SRC_Y", "SRC_W", "SRC_H", "CRTC_X", "CRTC_Y", "CRTC_W",
        "CRTC_H",
    ]
    static let crtcProperties = ["ACTIVE", "MODE_ID", "OUT_FENCE_PTR"]
    static let connectorProperties = ["CRTC_ID"]
    static let writebackProperties = [
        "CRTC_ID", "WRITEBACK_FB_ID", "WRITEBACK_PIXEL_FORMATS", "WRITEBACK_OUT_FENCE_PTR",
    ]

    /// drm_add_modes_noedid's modes vkms offers (a few of them), 1024x768 preferred.
    static let modes: [DRMModeInfo] = [
        DRMModeInfo(
            clock: 65000, hdisplay: 1024, hsyncStart: 1048, hsyncEnd: 1184, htotal: 1344, vdisplay: 768,
            vsyncStart: 771, vsyncEnd: 777, vtotal: 806, vrefresh: 60, flags: 0xa, type: 0x48, name: "1024x768"),
        DRMModeInfo(
            clock: 148500, hdisplay: 1920, hsyncStart: 2008, hsyncEnd: 2052, htotal: 2200, vdisplay: 1080,
            vsyncStart: 1084, vsyncEnd: 1089, vtotal: 1125, vrefresh: 60, flags: 0x5, type: 0x40, name: "1920x1080"),
        DRMModeInfo(
            clock: 74250, hdisplay: 1280, hsyncStart: 1390, hsyncEnd: 1430, htotal: 1650, vdisplay: 720,
            vsyncStart: 725, vsyncEnd: 730, vtotal: 750, vrefresh: 60, flags: 0x5, type: 0x40, name: "1280x720"),
        DRMModeInfo(
            clock: 25175, hdisplay: 640, hsyncStart: 656, hsyncEnd: 752, htotal: 800, vdisplay: 480, vsyncStart: 490,
            vsyncEnd: 492, vtotal: 525, vrefresh: 60, flags: 0xa, type: 0x40, name: "640x480"),
    ]

    init(driver: String) {
        self.driver = driver
        if isKMS {
            var bytes: [UInt8] = []
            for format in Self.writebackFormats { withUnsafeBytes(of: format.rawValue.littleEndian) { bytes += $0 } }
            blobs[Self.writebackFormatsBlob] = (bytes, nil)
            blobs[Self.primaryInFormatsBlob] = (Self.inFormatsBlob(Self.planeFormats), nil)
            blobs[Self.cursorInFormatsBlob] = (Self.inFormatsBlob(Self.cursorFormats), nil)
        }
    }

    /// create_in_format_blob with vkms's only modifier, DRM_FORMAT_MOD_LINEAR, for every format.
    static func inFormatsBlob(_ formats: [DRMFormat]) -> [UInt8] {
        var bytes: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        let modifiersAt = (24 + formats.count * 4 + 7) / 8 * 8
        for value in [1, 0, UInt32(formats.count), 24, 1, UInt32(modifiersAt)] as [UInt32] { put(value) }
        for format in formats { put(format.rawValue) }
        bytes += [UInt8](repeating: 0, count: modifiersAt - bytes.count)
        put(UInt64(1) << formats.count - 1)
        put(UInt32(0)); put(UInt32(0))
        put(UInt64(0))
        return bytes
    }

    func newObjectID() -> UInt32 {
        nextObjectID += 1
        return nextObjectID
    }

    /// The object type of a KMS object id, if it exists for a file with these caps.
    func objectType(_ id: UInt32, file: SimulatedDRMFile) -> DRMObjectType? {
        guard isKMS else { return framebuffers[id] != nil ? .framebuffer : nil }
        switch id {
        case Self.primaryPlane, Self.cursorPlane: return .plane
        case Self.crtc: return .crtc
        case Self.connector: return .connector
        case Self.writebackConnector: return file.writebackConnectors ? .connector : nil
        case Self.encoder, Self.writebackEncoder: return .encoder
        default: return framebuffers[id] != nil ? .framebuffer : nil
        }
    }

    func propertyNames(of id: UInt32) -> [String] {
        switch id {
        case Self.primaryPlane, Self.cursorPlane: return Self.planeProperties
        case Self.crtc: return Self.crtcProperties
        case Self.connector: return Self.connectorProperties
        case Self.writebackConnector: return Self.writebackProperties
        default: return []
        }
    }

    /// The current value of a property (pointer properties read back as 0).
    func value(of name: String, on id: UInt32) -> UInt64 {
        switch (id, name) {
        case (Self.primaryPlane, "type"): return 1
        case (Self.cursorPlane, "type"): return 2
        case (_, "FB_ID"): return UInt64(kms.planeFB[id] ?? 0)
        case (Self.primaryPlane, "CRTC_ID"), (Self.cursorPlane, "CRTC_ID"): return UInt64(kms.planeCRTC[id] ?? 0)
        case (_, "CRTC_ID"): return UInt64(kms.connectorCRTC[id] ?? 0)
        case (_, "ACTIVE"): return kms.active ? 1 : 0
        case (_, "MODE_ID"): return UInt64(kms.modeBlob)
        case (_, "WRITEBACK_PIXEL_FORMATS"): return UInt64(Self.writebackFormatsBlob)
        case (Self.primaryPlane, "IN_FORMATS"): return UInt64(Self.primaryInFormatsBlob)
        case (Self.cursorPlane, "IN_FORMATS"): return UInt64(Self.cursorInFormatsBlob)
        default: return kms.planeRect[id]?[name] ?? 0
        }
    }
}
