internal import CDmaBuf
internal import CLibDRM

#if canImport(Glibc)
    import Glibc
#endif

/// DRM through libdrm. libdrm has two error conventions, and each call site uses its own:
/// xf86drmMode.c's ioctl wrappers return `-errno`; xf86drm.c's and the getters return
/// -1 (or NULL) with `errno` set. libdrm's `drmIoctl` already retries EINTR and EAGAIN.
extension LinuxKernel {
    /// For calls that return `-errno`.
    private func negativeErrno(_ operation: String, _ result: Int32) throws(KernelError) {
        if result < 0 { throw KernelError(operation, Errno(rawValue: -result)) }
    }
    /// For calls that return -1 and set `errno`.
    private func minusOne(_ operation: String, _ result: Int32) throws(KernelError) {
        if result != 0 { throw KernelError(operation, Errno(rawValue: errno)) }
    }
    /// For getters that return NULL and set `errno`.
    private func object<T>(
        _ operation: String, _ pointer: UnsafeMutablePointer<T>?
    ) throws(KernelError) -> UnsafeMutablePointer<T> {
        guard let pointer else { throw KernelError(operation, Errno(rawValue: errno == 0 ? ENOMEM : errno)) }
        return pointer
    }

    public func drmVersion(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMVersion {
        let version = try object("DRM_IOCTL_VERSION", drmGetVersion(fd.rawValue))
        defer { drmFreeVersion(version) }
        func text(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int32) -> String {
            guard let pointer else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: pointer, count: Int(length)), as: UTF8.self)
        }
        let v = version.pointee
        return DRMVersion(
            major: v.version_major, minor: v.version_minor, patch: v.version_patchlevel,
            name: text(v.name, v.name_len), date: text(v.date, v.date_len), description: text(v.desc, v.desc_len))
    }

    public func drmCapability(_ fd: FileDescriptorNumber, _ capability: UInt64) throws(KernelError) -> UInt64 {
        var value: UInt64 = 0
        try minusOne("DRM_IOCTL_GET_CAP", drmGetCap(fd.rawValue, capability, &value))
        return value
    }

    public func drmSetClientCapability(
        _ fd: FileDescriptorNumber, _ capability: UInt64, value: UInt64
    ) throws(KernelError) {
        try minusOne("DRM_IOCTL_SET_CLIENT_CAP", drmSetClientCap(fd.rawValue, capability, value))
    }

    public func drmCreateDumb(
        _ fd: FileDescriptorNumber, width: UInt32, height: UInt32, bitsPerPixel: UInt32
    ) throws(KernelError) -> DRMDumbBuffer {
        var handle: UInt32 = 0, pitch: UInt32 = 0, size: UInt64 = 0
        try negativeErrno(
            "DRM_IOCTL_MODE_CREATE_DUMB",
            drmModeCreateDumbBuffer(fd.rawValue, width, height, bitsPerPixel, 0, &handle, &pitch, &size))
        return DRMDumbBuffer(handle: GEMHandle(rawValue: handle), pitch: pitch, size: size)
    }

    public func drmMapDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) -> UInt64 {
        var offset: UInt64 = 0
        try negativeErrno("DRM_IOCTL_MODE_MAP_DUMB", drmModeMapDumbBuffer(fd.rawValue, handle.rawValue, &offset))
        return offset
    }

    public func drmDestroyDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) {
        try negativeErrno("DRM_IOCTL_MODE_DESTROY_DUMB", drmModeDestroyDumbBuffer(fd.rawValue, handle.rawValue))
    }

    public func drmGEMClose(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) {
        try minusOne("DRM_IOCTL_GEM_CLOSE", drmCloseBufferHandle(fd.rawValue, handle.rawValue))
    }

    public func drmPrimeHandleToFD(
        _ fd: FileDescriptorNumber, _ handle: GEMHandle, flags: PrimeFlags
    ) throws(KernelError) -> FileDescriptorNumber {
        var prime: Int32 = -1
        try minusOne(
            "DRM_IOCTL_PRIME_HANDLE_TO_FD",
            CLibDRM.drmPrimeHandleToFD(fd.rawValue, handle.rawValue, flags.rawValue, &prime))
        return FileDescriptorNumber(rawValue: prime)
    }

    public func drmPrimeFDToHandle(
        _ fd: FileDescriptorNumber, dmaBuf: FileDescriptorNumber
    ) throws(KernelError) -> GEMHandle {
        var handle: UInt32 = 0
        try minusOne("DRM_IOCTL_PRIME_FD_TO_HANDLE", CLibDRM.drmPrimeFDToHandle(fd.rawValue, dmaBuf.rawValue, &handle))
        return GEMHandle(rawValue: handle)
    }

    public func drmResources(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMResources {
        let resources = try object("DRM_IOCTL_MODE_GETRESOURCES", drmModeGetResources(fd.rawValue))
        defer { drmModeFreeResources(resources) }
        let r = resources.pointee
        func ids<K>(_ pointer: UnsafeMutablePointer<UInt32>?, _ count: Int32) -> [DRMID<K>] {
            (0..<Int(count)).map { DRMID(rawValue: pointer![$0]) }
        }
        return DRMResources(
            framebuffers: ids(r.fbs, r.count_fbs), crtcs: ids(r.crtcs, r.count_crtcs),
            connectors: ids(r.connectors, r.count_connectors), encoders: ids(r.encoders, r.count_encoders),
            minWidth: r.min_width, maxWidth: r.max_width, minHeight: r.min_height, maxHeight: r.max_height)
    }

    public func drmConnector(_ fd: FileDescriptorNumber, _ id: ConnectorID) throws(KernelError) -> DRMConnectorInfo {
        let connector = try object("DRM_IOCTL_MODE_GETCONNECTOR", drmModeGetConnector(fd.rawValue, id.rawValue))
        defer { drmModeFreeConnector(connector) }
        let c = connector.pointee
        let modes = (0..<Int(c.count_modes)).map { index in
            let m = c.modes[index]
            let name = withUnsafeBytes(of: m.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return DRMModeInfo(
                clock: m.clock, hdisplay: m.hdisplay, hsyncStart: m.hsync_start, hsyncEnd: m.hsync_end,
                htotal: m.htotal,
                hskew: m.hskew, vdisplay: m.vdisplay, vsyncStart: m.vsync_start, vsyncEnd: m.vsync_end,
                vtotal: m.vtotal,
                vscan: m.vscan, vrefresh: m.vrefresh, flags: m.flags, type: m.type, name: name)
        }
        return DRMConnectorInfo(
            id: id, type: DRMConnectorType(rawValue: c.connector_type), typeIndex: c.connector_type_id,
            connection: DRMConnection(rawValue: c.connection.rawValue),
            encoders: (0..<Int(c.count_encoders)).map { EncoderID(rawValue: c.encoders[$0]) }, modes: modes)
    }

    public func drmEncoder(_ fd: FileDescriptorNumber, _ id: EncoderID) throws(KernelError) -> DRMEncoderInfo {
        let encoder = try object("DRM_IOCTL_MODE_GETENCODER", drmModeGetEncoder(fd.rawValue, id.rawValue))
        defer { drmModeFreeEncoder(encoder) }
        return DRMEncoderInfo(
            id: id, type: DRMEncoderType(rawValue: encoder.pointee.encoder_type),
            possibleCRTCs: encoder.pointee.possible_crtcs, possibleClones: encoder.pointee.possible_clones)
    }

    public func drmPlanes(_ fd: FileDescriptorNumber) throws(KernelError) -> [PlaneID] {
        let planes = try object("DRM_IOCTL_MODE_GETPLANERESOURCES", drmModeGetPlaneResources(fd.rawValue))
        defer { drmModeFreePlaneResources(planes) }
        return (0..<Int(planes.pointee.count_planes)).map { PlaneID(rawValue: planes.pointee.planes[$0]) }
    }

    public func drmPlane(_ fd: FileDescriptorNumber, _ id: PlaneID) throws(KernelError) -> DRMPlaneInfo {
        let plane = try object("DRM_IOCTL_MODE_GETPLANE", drmModeGetPlane(fd.rawValue, id.rawValue))
        defer { drmModeFreePlane(plane) }
        let p = plane.pointee
        return DRMPlaneInfo(
            id: id, possibleCRTCs: p.possible_crtcs, crtc: p.crtc_id == 0 ? nil : CRTCID(rawValue: p.crtc_id),
            framebuffer: p.fb_id == 0 ? nil : FramebufferID(rawValue: p.fb_id),
            formats: (0..<Int(p.count_formats)).map { DRMFormat(rawValue: p.formats[$0]) })
    }

    public func drmObjectProperties(
        _ fd: FileDescriptorNumber, _ object: DRMObjectID, type: DRMObjectType
    ) throws(KernelError) -> [PropertyID: UInt64] {
        let properties = try self.object(
            "DRM_IOCTL_MODE_OBJ_GETPROPERTIES", drmModeObjectGetProperties(fd.rawValue, object.rawValue, type.rawValue))
        defer { drmModeFreeObjectProperties(properties) }
        let p = properties.pointee
        return Dictionary(
            uniqueKeysWithValues: (0..<Int(p.count_props)).map {
                (PropertyID(rawValue: p.props[$0]), p.prop_values[$0])
            })
    }

    public func drmProperty(_ fd: FileDescriptorNumber, _ id: PropertyID) throws(KernelError) -> DRMPropertyInfo {
        let property = try object("DRM_IOCTL_MODE_GETPROPERTY", drmModeGetProperty(fd.rawValue, id.rawValue))
        defer { drmModeFreeProperty(property) }
        let p = property.pointee
        let name = withUnsafeBytes(of: p.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var values = (0..<Int(p.count_values)).map { p.values[$0] }
        var names: [String] = []
        if p.count_enums > 0 {
            values = (0..<Int(p.count_enums)).map { p.enums[$0].value }
            names = (0..<Int(p.count_enums)).map { index in
                withUnsafeBytes(of: p.enums[index].name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
        }
        return DRMPropertyInfo(
            id: id, name: name, flags: DRMPropertyFlags(rawValue: p.flags), values: values, enumNames: names)
    }

    public func drmCreateBlob(_ fd: FileDescriptorNumber, _ bytes: [UInt8]) throws(KernelError) -> BlobID {
        var id: UInt32 = 0
        try negativeErrno(
            "DRM_IOCTL_MODE_CREATEPROPBLOB", drmModeCreatePropertyBlob(fd.rawValue, bytes, bytes.count, &id))
        return BlobID(rawValue: id)
    }

    public func drmBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) -> [UInt8] {
        let blob = try object("DRM_IOCTL_MODE_GETPROPBLOB", drmModeGetPropertyBlob(fd.rawValue, id.rawValue))
        defer { drmModeFreePropertyBlob(blob) }
        return Array(UnsafeRawBufferPointer(start: blob.pointee.data, count: Int(blob.pointee.length)))
    }

    public func drmDestroyBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) {
        try negativeErrno("DRM_IOCTL_MODE_DESTROYPROPBLOB", drmModeDestroyPropertyBlob(fd.rawValue, id.rawValue))
    }

    public func drmAddFramebuffer(
        _ fd: FileDescriptorNumber, _ request: DRMFramebufferRequest
    ) throws(KernelError) -> FramebufferID {
        var id: UInt32 = 0
        let flags: UInt32 = request.modifiers == nil ? 0 : UInt32(DRM_MODE_FB_MODIFIERS)
        let result = drmModeAddFB2WithModifiers(
            fd.rawValue, request.width, request.height, request.format.rawValue, request.handles.map(\.rawValue),
            request.pitches, request.offsets,
            request.modifiers, &id, flags)
        try negativeErrno("DRM_IOCTL_MODE_ADDFB2", result)
        return FramebufferID(rawValue: id)
    }

    public func drmRemoveFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError) {
        try negativeErrno("DRM_IOCTL_MODE_RMFB", drmModeRmFB(fd.rawValue, id.rawValue))
    }

    public func drmCloseFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError) {
        try negativeErrno("DRM_IOCTL_MODE_CLOSEFB", cdmabuf_drm_mode_closefb(fd.rawValue, id.rawValue))
    }

    public func drmAtomicCommit(
        _ fd: FileDescriptorNumber, _ properties: [DRMAtomicProperty], flags: DRMAtomicFlags, userData: UInt64
    ) throws(KernelError) {
        guard let request = drmModeAtomicAlloc() else { throw KernelError("DRM_IOCTL_MODE_ATOMIC", .ENOMEM) }
        defer { drmModeAtomicFree(request) }
        for change in properties {
            let added = drmModeAtomicAddProperty(
                request, change.object.rawValue, change.property.rawValue, change.value)
            if added < 0 { throw KernelError("DRM_IOCTL_MODE_ATOMIC", Errno(rawValue: -added)) }
        }
        try negativeErrno(
            "DRM_IOCTL_MODE_ATOMIC",
            drmModeAtomicCommit(
                fd.rawValue, request, flags.rawValue, UnsafeMutableRawPointer(bitPattern: UInt(userData))))
    }

    public func drmCRTCSequence(_ fd: FileDescriptorNumber, _ crtc: CRTCID) throws(KernelError) -> UInt64 {
        var sequence: UInt64 = 0, nanoseconds: UInt64 = 0
        try minusOne(
            "DRM_IOCTL_CRTC_GET_SEQUENCE", drmCrtcGetSequence(fd.rawValue, crtc.rawValue, &sequence, &nanoseconds))
        return sequence
    }

    public func drmReadEvents(_ fd: FileDescriptorNumber) throws(KernelError) -> [DRMEvent] {
        // On the stack: a frame's flip event costs no heap buffer (and no zeroing) here.
        try withUnsafeTemporaryAllocation(byteCount: 1024, alignment: 8) { buffer throws(KernelError) in
            let count: Int
            do throws(KernelError) {
                count = Int(try call("read") { Int32(cdmabuf_read(fd.rawValue, buffer.baseAddress, buffer.count)) })
            } catch  where error.errno == .EAGAIN {
                return []
            }
            var events: [DRMEvent] = []
            var offset = 0
            let header = MemoryLayout<drm_event>.size
            while offset + header <= count {
                let type = buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                let length = Int(buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                guard length >= header, offset + length <= count else { break }
                if length >= MemoryLayout<drm_event_vblank>.size {
                    let e = buffer.loadUnaligned(fromByteOffset: offset, as: drm_event_vblank.self)
                    events.append(
                        DRMEvent(
                            type: DRMEventType(rawValue: type), userData: e.user_data, seconds: e.tv_sec,
                            microseconds: e.tv_usec, sequence: e.sequence,
                            crtc: CRTCID(rawValue: e.crtc_id)))
                }
                offset += length
            }
            return events
        }
    }
}
