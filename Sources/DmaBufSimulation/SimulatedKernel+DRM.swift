import DmaBufKernel
import Foundation

/// DRM ioctls on the simulated kernel, with the checks and errnos of Linux 6.1's DRM core,
/// vgem and vkms. Writeback composes the primary plane for real, pixel by pixel.
extension SimulatedKernel {
    func drmDevice(at path: String) -> SimulatedDRMDevice? {
        guard path.hasPrefix(KernelPaths.drmDirectory + "/") else { return nil }
        return drmDevices[String(path.dropFirst(KernelPaths.drmDirectory.count + 1))]
    }

    /// The DRM file behind `fd`: EBADF when closed, ENOTTY when not a DRM device.
    private func drm(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedDRMFile {
        record(operation)
        guard let drm = try file(fd, operation).drm else { throw KernelError(operation, .ENOTTY) }
        return drm
    }

    /// KMS ioctls on a device without modesetting (vgem): drm_ioctl's DRIVER_MODESET check.
    private func kms(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedDRMFile {
        let drm = try drm(fd, operation)
        guard drm.device.isKMS else { throw KernelError(operation, .EOPNOTSUPP) }
        return drm
    }

    public func drmVersion(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMVersion {
        let device = try drm(fd, "DRM_IOCTL_VERSION").device
        return device.isKMS
            ? DRMVersion(
                major: 1, minor: 0, patch: 0, name: "vkms", date: "20180514", description: "Virtual Kernel Mode Setting"
            )
            : DRMVersion(
                major: 1, minor: 0, patch: 0, name: "vgem", date: "20120112", description: "Virtual GEM provider")
    }

    public func drmCapability(_ fd: FileDescriptorNumber, _ capability: UInt64) throws(KernelError) -> UInt64 {
        let device = try drm(fd, "DRM_IOCTL_GET_CAP").device
        // drm_getcap: a few caps for every driver, the rest only with modesetting.
        switch DRMCapability(rawValue: capability) {
        case .timestampMonotonic: return 1
        case .prime: return DRMPrimeCapability([.importing, .exporting]).rawValue
        case .syncObject: return 0
        default: break
        }
        guard device.isKMS else { throw KernelError("DRM_IOCTL_GET_CAP", .EOPNOTSUPP) }
        switch DRMCapability(rawValue: capability) {
        case .dumbBuffer, .addFB2Modifiers, .crtcInVBlankEvent: return 1
        case .asyncPageFlip: return 0
        case .cursorWidth: return 64
        default: throw KernelError("DRM_IOCTL_GET_CAP", .EINVAL)
        }
    }

    public func drmSetClientCapability(
        _ fd: FileDescriptorNumber, _ capability: UInt64, value: UInt64
    ) throws(KernelError) {
        let file = try drm(fd, "DRM_IOCTL_SET_CLIENT_CAP")
        guard value <= 1 else { throw KernelError("DRM_IOCTL_SET_CLIENT_CAP", .EINVAL) }
        locked {
            switch DRMClientCapability(rawValue: capability) {
            case .universalPlanes: file.universalPlanes = value == 1
            case .atomic:
                file.atomic = value == 1
                if value == 1 { file.universalPlanes = true }
            case .writebackConnectors: file.writebackConnectors = value == 1
            default: break
            }
        }
        // drm_setclientcap: writeback needs atomic; unknown caps are EINVAL.
        switch DRMClientCapability(rawValue: capability) {
        case .writebackConnectors where !locked({ file.atomic }): throw KernelError("DRM_IOCTL_SET_CLIENT_CAP", .EINVAL)
        case nil: throw KernelError("DRM_IOCTL_SET_CLIENT_CAP", .EINVAL)
        default: break
        }
    }

    // MARK: GEM and PRIME

    public func drmCreateDumb(
        _ fd: FileDescriptorNumber, width: UInt32, height: UInt32, bitsPerPixel: UInt32
    ) throws(KernelError) -> DRMDumbBuffer {
        let operation = "DRM_IOCTL_MODE_CREATE_DUMB"
        let file = try drm(fd, operation)
        // drm_mode_create_dumb: zero sizes, overflowing pitch or size are EINVAL.
        if width == 0 || height == 0 || bitsPerPixel == 0 { throw KernelError(operation, .EINVAL) }
        let cpp = (UInt64(bitsPerPixel) + 7) / 8
        let pitch = UInt64(width) * cpp
        let page = UInt64(pageSize)
        guard pitch <= UInt64(UInt32.max), pitch * UInt64(height) <= UInt64(UInt32.max) else {
            throw KernelError(operation, .EINVAL)
        }
        let size = (pitch * UInt64(height) + page - 1) / page * page
        let memory = try host.memfdCreate(name: "sim:\(file.device.driver) dumb", flags: .closeOnExec)
        do { try host.truncate(memory, length: size) } catch {
            try? host.close(memory)
            throw KernelError(operation, error.errno)
        }
        let object = SimulatedGEM(
            segments: [SimulatedSegment(memfd: memory, offset: 0, size: size)], size: size, vmappable: true, dumb: true)
        let handle = locked { file.add(object) }
        return DRMDumbBuffer(handle: handle, pitch: UInt32(pitch), size: size)
    }

    /// The fake mmap offset of a handle on its DRM file.
    private func mapOffset(_ handle: GEMHandle) -> UInt64 { UInt64(handle.rawValue) << 32 }

    public func drmMapDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) -> UInt64 {
        let file = try drm(fd, "DRM_IOCTL_MODE_MAP_DUMB")
        guard locked({ file.handles[handle.rawValue] }) != nil else {
            throw KernelError("DRM_IOCTL_MODE_MAP_DUMB", .ENOENT)
        }
        return mapOffset(handle)
    }

    /// mmap of a DRM file at a dumb buffer's offset maps that object's memory.
    func mapGEM(
        of drm: SimulatedDRMFile, file: SimulatedFile, length: Int, protection: MemoryProtection, offset: UInt64
    )
        throws(KernelError) -> UnsafeMutableRawPointer
    {
        guard offset & 0xffff_ffff == 0, let object = locked({ drm.handles[UInt32(offset >> 32)] }) else {
            throw KernelError("mmap", .EINVAL)
        }
        if length == 0 || UInt64(length) > object.size { throw KernelError("mmap", .EINVAL) }
        let page = pageSize
        let base = try mapSegments(
            object.segments, length: (length + page - 1) / page * page, protection: protection, shared: true, offset: 0)
        locked {
            file.references += 1
            mappings[base] = (file, length)
        }
        return base
    }

    public func drmDestroyDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) {
        try closeHandle(try drm(fd, "DRM_IOCTL_MODE_DESTROY_DUMB"), handle, "DRM_IOCTL_MODE_DESTROY_DUMB")
    }

    public func drmGEMClose(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) {
        try closeHandle(try drm(fd, "DRM_IOCTL_GEM_CLOSE"), handle, "DRM_IOCTL_GEM_CLOSE")
    }

    private func closeHandle(_ file: SimulatedDRMFile, _ handle: GEMHandle, _ operation: String) throws(KernelError) {
        // drm_gem_handle_delete: an unknown handle is EINVAL. The object lives on while a
        // framebuffer or an exported dma-buf holds it (they hold their own copies here).
        guard let object = locked({ file.handles.removeValue(forKey: handle.rawValue) }) else {
            throw KernelError(operation, .EINVAL)
        }
        releaseIfUnused(object)
    }

    private func releaseIfUnused(_ object: SimulatedGEM) {
        let used = locked {
            drmDevices.values.contains { $0.framebuffers.values.contains { $0.objects.contains { $0 === object } } }
                || files.values.contains { $0.drm?.handles.values.contains { $0 === object } == true }
        }
        if !used { for segment in object.segments { try? host.close(segment.memfd) } }
    }

    public func drmPrimeHandleToFD(
        _ fd: FileDescriptorNumber, _ handle: GEMHandle, flags: PrimeFlags
    ) throws(KernelError) -> FileDescriptorNumber {
        let operation = "DRM_IOCTL_PRIME_HANDLE_TO_FD"
        let file = try drm(fd, operation)
        // drm_prime_handle_to_fd_ioctl: only DRM_CLOEXEC and DRM_RDWR.
        if !flags.subtracting([.closeOnExec, .readWrite]).isEmpty { throw KernelError(operation, .EINVAL) }
        guard let object = locked({ file.handles[handle.rawValue] }) else { throw KernelError(operation, .ENOENT) }
        var segments: [SimulatedSegment] = []
        for segment in object.segments {
            do {
                segments.append(
                    SimulatedSegment(
                        memfd: try host.duplicate(segment.memfd), offset: segment.offset, size: segment.size))
            } catch {
                for made in segments { try? host.close(made.memfd) }
                throw KernelError(operation, error.errno)
            }
        }
        let buffer = SimulatedDmaBuf(
            exporter: "drm", size: object.size, contiguousBytes: UInt64(pageSize), writable: flags.contains(.readWrite),
            mmapRule: .sharedOnly,
            segments: segments)
        let exported = try install(.dmaBuf(buffer), label: "PRIME", closeOnExec: flags.contains(.closeOnExec))
        locked { object.dmaBuf = ObjectIdentifier(buffer) }
        return exported
    }

    public func drmPrimeFDToHandle(
        _ fd: FileDescriptorNumber, dmaBuf: FileDescriptorNumber
    ) throws(KernelError) -> GEMHandle {
        let operation = "DRM_IOCTL_PRIME_FD_TO_HANDLE"
        let file = try drm(fd, operation)
        // dma_buf_get: a closed fd is EBADF, another kind of file EINVAL.
        try requireOpen(dmaBuf, operation)
        guard let buffer = locked({ files[dmaBuf.rawValue]?.dmaBuf }) else { throw KernelError(operation, .EINVAL) }
        let identity = ObjectIdentifier(buffer)
        if let known = locked({ file.handle(for: identity) }) { return known }
        // Our own export coming back: the same object gets a handle again (self-import).
        if let own = locked({ file.device.ownObject(exportedAs: identity, in: files) }) {
            return locked { file.add(own) }
        }
        var segments: [SimulatedSegment] = []
        let pieces =
            buffer.segments.isEmpty ? [SimulatedSegment(memfd: dmaBuf, offset: 0, size: buffer.size)] : buffer.segments
        for piece in pieces {
            do {
                segments.append(
                    SimulatedSegment(memfd: try host.duplicate(piece.memfd), offset: piece.offset, size: piece.size))
            } catch {
                for made in segments { try? host.close(made.memfd) }
                throw KernelError(operation, error.errno)
            }
        }
        let object = SimulatedGEM(
            segments: segments, size: buffer.size, vmappable: hasVmap(buffer), dumb: false)
        object.dmaBuf = identity
        return locked { file.add(object) }
    }

    // MARK: KMS objects

    public func drmResources(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMResources {
        let file = try kms(fd, "DRM_IOCTL_MODE_GETRESOURCES")
        return locked {
            let owned = file.device.framebuffers.filter { $0.value.owner == ObjectIdentifier(file) }.keys.sorted()
            let connectors =
                [SimulatedDRMDevice.connector]
                + (file.writebackConnectors ? [SimulatedDRMDevice.writebackConnector] : [])
            return DRMResources(
                framebuffers: owned.map(FramebufferID.init), crtcs: [CRTCID(rawValue: SimulatedDRMDevice.crtc)],
                connectors: connectors.map(ConnectorID.init),
                encoders: [SimulatedDRMDevice.encoder, SimulatedDRMDevice.writebackEncoder].map(EncoderID.init),
                minWidth: 20, maxWidth: 8192, minHeight: 20, maxHeight: 8192)
        }
    }

    public func drmConnector(_ fd: FileDescriptorNumber, _ id: ConnectorID) throws(KernelError) -> DRMConnectorInfo {
        let file = try kms(fd, "DRM_IOCTL_MODE_GETCONNECTOR")
        guard locked({ file.device.objectType(id.rawValue, file: file) }) == .connector else {
            throw KernelError("DRM_IOCTL_MODE_GETCONNECTOR", .ENOENT)
        }
        let writeback = id.rawValue == SimulatedDRMDevice.writebackConnector
        return DRMConnectorInfo(
            id: id, type: writeback ? .writeback : .virtual, typeIndex: 1,
            connection: writeback ? .unknown : .connected,
            encoders: [
                EncoderID(rawValue: writeback ? SimulatedDRMDevice.writebackEncoder : SimulatedDRMDevice.encoder)
            ],
            modes: SimulatedDRMDevice.modes)
    }

    public func drmEncoder(_ fd: FileDescriptorNumber, _ id: EncoderID) throws(KernelError) -> DRMEncoderInfo {
        let file = try kms(fd, "DRM_IOCTL_MODE_GETENCODER")
        guard locked({ file.device.objectType(id.rawValue, file: file) }) == .encoder else {
            throw KernelError("DRM_IOCTL_MODE_GETENCODER", .ENOENT)
        }
        // vkms leaves possible_clones empty; the DRM core then sets each encoder's own bit.
        let index: UInt32 = id.rawValue == SimulatedDRMDevice.writebackEncoder ? 1 : 0
        return DRMEncoderInfo(id: id, type: .virtual, possibleCRTCs: 1, possibleClones: 1 << index)
    }

    public func drmPlanes(_ fd: FileDescriptorNumber) throws(KernelError) -> [PlaneID] {
        let file = try kms(fd, "DRM_IOCTL_MODE_GETPLANERESOURCES")
        // Without universal planes only overlays are listed; vkms has none.
        return locked { file.universalPlanes }
            ? [SimulatedDRMDevice.primaryPlane, SimulatedDRMDevice.cursorPlane].map(PlaneID.init) : []
    }

    public func drmPlane(_ fd: FileDescriptorNumber, _ id: PlaneID) throws(KernelError) -> DRMPlaneInfo {
        let file = try kms(fd, "DRM_IOCTL_MODE_GETPLANE")
        guard locked({ file.device.objectType(id.rawValue, file: file) }) == .plane else {
            throw KernelError("DRM_IOCTL_MODE_GETPLANE", .ENOENT)
        }
        return locked {
            let state = file.device.kms
            return DRMPlaneInfo(
                id: id, possibleCRTCs: 1, crtc: state.planeCRTC[id.rawValue].map(CRTCID.init),
                framebuffer: state.planeFB[id.rawValue].map(FramebufferID.init),
                formats: id.rawValue == SimulatedDRMDevice.primaryPlane
                    ? SimulatedDRMDevice.planeFormats : SimulatedDRMDevice.cursorFormats)
        }
    }

    public func drmObjectProperties(
        _ fd: FileDescriptorNumber, _ object: DRMObjectID, type: DRMObjectType
    ) throws(KernelError) -> [PropertyID: UInt64] {
        let file = try kms(fd, "DRM_IOCTL_MODE_OBJ_GETPROPERTIES")
        return try locked { () throws(KernelError) in
            let device = file.device
            guard let actual = device.objectType(object.rawValue, file: file), type == .any || type == actual else {
                throw KernelError("DRM_IOCTL_MODE_OBJ_GETPROPERTIES", .ENOENT)
            }
            var values: [PropertyID: UInt64] = [:]
            for name in device.propertyNames(of: object.rawValue) {
                values[PropertyID(rawValue: SimulatedDRMDevice.propertyIDs[name]!)] = device.value(
                    of: name, on: object.rawValue)
            }
            return values
        }
    }

    public func drmProperty(_ fd: FileDescriptorNumber, _ id: PropertyID) throws(KernelError) -> DRMPropertyInfo {
        _ = try kms(fd, "DRM_IOCTL_MODE_GETPROPERTY")
        guard let name = SimulatedDRMDevice.propertyName(id.rawValue) else {
            throw KernelError("DRM_IOCTL_MODE_GETPROPERTY", .ENOENT)
        }
        switch name {
        case "type":
            return DRMPropertyInfo(
                id: id, name: name, flags: [.enumeration, .immutable], values: [0, 1, 2],
                enumNames: ["Overlay", "Primary", "Cursor"])
        case "IN_FORMATS", "WRITEBACK_PIXEL_FORMATS":
            return DRMPropertyInfo(id: id, name: name, flags: [.blob, .immutable])
        case "MODE_ID", "WRITEBACK_FB_ID", "FB_ID", "CRTC_ID":
            return DRMPropertyInfo(id: id, name: name, flags: name == "MODE_ID" ? .blob : .object)
        default: return DRMPropertyInfo(id: id, name: name, flags: .range, values: [0, UInt64(UInt32.max)])
        }
    }

    public func drmCreateBlob(_ fd: FileDescriptorNumber, _ bytes: [UInt8]) throws(KernelError) -> BlobID {
        let file = try kms(fd, "DRM_IOCTL_MODE_CREATEPROPBLOB")
        if bytes.isEmpty { throw KernelError("DRM_IOCTL_MODE_CREATEPROPBLOB", .EINVAL) }
        return locked {
            let id = file.device.newObjectID()
            file.device.blobs[id] = (bytes, ObjectIdentifier(file))
            return BlobID(rawValue: id)
        }
    }

    public func drmBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) -> [UInt8] {
        let file = try kms(fd, "DRM_IOCTL_MODE_GETPROPBLOB")
        guard let blob = locked({ file.device.blobs[id.rawValue] }) else {
            throw KernelError("DRM_IOCTL_MODE_GETPROPBLOB", .ENOENT)
        }
        return blob.bytes
    }

    public func drmDestroyBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) {
        let file = try kms(fd, "DRM_IOCTL_MODE_DESTROYPROPBLOB")
        try locked { () throws(KernelError) in
            // drm_mode_destroyblob_ioctl: unknown ENOENT, someone else's EPERM. A blob in use
            // (MODE_ID) stays alive for the CRTC state; the id is gone for userspace either way.
            guard let blob = file.device.blobs[id.rawValue] else {
                throw KernelError("DRM_IOCTL_MODE_DESTROYPROPBLOB", .ENOENT)
            }
            guard blob.owner == ObjectIdentifier(file) else {
                throw KernelError("DRM_IOCTL_MODE_DESTROYPROPBLOB", .EPERM)
            }
            file.device.blobs[id.rawValue] = nil
        }
    }

    // MARK: Framebuffers

    public func drmAddFramebuffer(
        _ fd: FileDescriptorNumber, _ request: DRMFramebufferRequest
    ) throws(KernelError) -> FramebufferID {
        let operation = "DRM_IOCTL_MODE_ADDFB2"
        let file = try kms(fd, operation)
        let modifiers = request.modifiers ?? [0, 0, 0, 0]
        let withModifiers = request.modifiers != nil
        // drm_internal_framebuffer_create and framebuffer_check, in their order.
        guard request.width >= 20, request.width <= 8192, request.height >= 20, request.height <= 8192 else {
            throw KernelError(operation, .EINVAL)
        }
        let planes: Int, cpp: UInt64
        switch request.format {
        case .xrgb8888, .argb8888: (planes, cpp) = (1, 4)
        case .xrgb16161616, .argb16161616: (planes, cpp) = (1, 8)
        case .rgb565: (planes, cpp) = (1, 2)
        default: throw KernelError(operation, .EINVAL)
        }
        var objects: [SimulatedGEM] = []
        for i in 0..<planes {
            if request.handles[i].rawValue == 0 { throw KernelError(operation, .EINVAL) }
            if UInt64(request.height) * UInt64(request.pitches[i]) + UInt64(request.offsets[i]) > UInt64(UInt32.max) {
                throw KernelError(operation, .ERANGE)
            }
            if UInt64(request.pitches[i]) < UInt64(request.width) * cpp { throw KernelError(operation, .EINVAL) }
            if modifiers[i] != 0 { throw KernelError(operation, .EINVAL) }  // vkms scans out linear buffers only
        }
        for i in planes..<4 {
            if modifiers[i] != 0 { throw KernelError(operation, .EINVAL) }
            guard withModifiers else { continue }
            if request.handles[i].rawValue != 0 || request.pitches[i] != 0 || request.offsets[i] != 0 {
                throw KernelError(operation, .EINVAL)
            }
        }
        // drm_gem_fb_init_with_funcs: each handle must exist and be large enough.
        for i in 0..<planes {
            guard let object = locked({ file.handles[request.handles[i].rawValue] }) else {
                throw KernelError(operation, .ENOENT)
            }
            let minimum =
                UInt64(request.height - 1) * UInt64(request.pitches[i]) + UInt64(request.width) * cpp
                + UInt64(request.offsets[i])
            if object.size < minimum { throw KernelError(operation, .EINVAL) }
            objects.append(object)
        }
        return locked {
            let id = file.device.newObjectID()
            file.device.framebuffers[id] = SimulatedFramebuffer(
                request: request, objects: objects, owner: ObjectIdentifier(file))
            return FramebufferID(rawValue: id)
        }
    }

    public func drmRemoveFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError) {
        let file = try kms(fd, "DRM_IOCTL_MODE_RMFB")
        let removed = try locked { () throws(KernelError) -> SimulatedFramebuffer in
            guard let framebuffer = file.device.framebuffers[id.rawValue], framebuffer.owner == ObjectIdentifier(file)
            else {
                throw KernelError("DRM_IOCTL_MODE_RMFB", .ENOENT)
            }
            removeFramebuffer(id.rawValue, from: file.device)
            return framebuffer
        }
        for object in removed.objects { releaseIfUnused(object) }
    }

    public func drmCloseFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError) {
        let operation = "DRM_IOCTL_MODE_CLOSEFB"
        // 6.1's drm_ioctl rejects a core ioctl number past its table with EINVAL (drm_ioctl.c:846).
        guard version.hasCloseFramebuffer else {
            record(operation)
            throw KernelError(operation, .EINVAL)
        }
        let file = try kms(fd, operation)
        let closed = try locked { () throws(KernelError) -> SimulatedFramebuffer? in
            // drm_mode_closefb_ioctl → drm_mode_closefb: ENOENT unless this file made it.
            guard var framebuffer = file.device.framebuffers[id.rawValue], framebuffer.owner == ObjectIdentifier(file)
            else { throw KernelError(operation, .ENOENT) }
            // Unlike RMFB, planes keep showing it: it goes when the last of them shows another.
            if file.device.kms.planeFB.values.contains(id.rawValue) {
                framebuffer.owner = nil
                file.device.framebuffers[id.rawValue] = framebuffer
                return nil
            }
            file.device.framebuffers[id.rawValue] = nil
            return framebuffer
        }
        for object in closed?.objects ?? [] { releaseIfUnused(object) }
    }

    /// Framebuffers closed while shown that no plane shows any more. Caller holds the lock.
    func sweepClosedFramebuffers(_ device: SimulatedDRMDevice) -> [SimulatedGEM] {
        let gone = device.framebuffers.filter { $0.value.owner == nil && !device.kms.planeFB.values.contains($0.key) }
        for id in gone.keys { device.framebuffers[id] = nil }
        return gone.values.flatMap(\.objects)
    }

    /// drm_framebuffer_remove (atomic_remove_fb): planes showing it are turned off. The CRTC
    /// would go off too only if that commit failed, and vkms accepts a CRTC without planes.
    /// Caller holds the lock.
    private func removeFramebuffer(_ id: UInt32, from device: SimulatedDRMDevice) {
        device.framebuffers[id] = nil
        for (plane, fb) in device.kms.planeFB where fb == id {
            device.kms.planeFB[plane] = nil
            device.kms.planeCRTC[plane] = nil
        }
    }

    /// The last reference to a DRM file is gone: its handles, framebuffers and blobs go too.
    func releaseDRMFile(_ drm: SimulatedDRMFile) {
        let owner = ObjectIdentifier(drm)
        let device = drm.device
        var objects = Array(drm.handles.values)
        drm.handles = [:]
        for (id, framebuffer) in device.framebuffers where framebuffer.owner == owner {
            objects += framebuffer.objects
            removeFramebuffer(id, from: device)
        }
        device.blobs = device.blobs.filter { $0.value.owner != owner }
        // Unlocked part: closing host memfds of objects nothing else holds.
        let unused = objects.filter { object in
            !device.framebuffers.values.contains { $0.objects.contains { $0 === object } }
                && !files.values.contains { $0.drm?.handles.values.contains { $0 === object } == true }
        }
        var closed = Set<ObjectIdentifier>()
        for object in unused where closed.insert(ObjectIdentifier(object)).inserted {
            for segment in object.segments { try? host.close(segment.memfd) }
        }
    }

    // MARK: Atomic

    public func drmAtomicCommit(
        _ fd: FileDescriptorNumber, _ properties: [DRMAtomicProperty], flags: DRMAtomicFlags, userData: UInt64
    ) throws(KernelError) {
        let operation = "DRM_IOCTL_MODE_ATOMIC"
        // libdrm's drmModeAtomicCommit does not send an empty request.
        if properties.isEmpty { return }
        let file = try kms(fd, operation)
        func fail(_ errno: Errno) -> KernelError { KernelError(operation, errno) }
        // drm_mode_atomic_ioctl's entry checks.
        guard locked({ file.atomic }) else { throw fail(.EINVAL) }
        if !flags.subtracting([.pageFlipEvent, .testOnly, .nonBlock, .allowModeset]).isEmpty { throw fail(.EINVAL) }
        if flags.contains(.testOnly) && flags.contains(.pageFlipEvent) { throw fail(.EINVAL) }

        let device = file.device
        var (composed, fencePointers): ([UInt8]?, [UInt64]) = (nil, [])
        var writebackTarget: SimulatedFramebuffer?
        var unshown: [SimulatedGEM] = []
        try locked { () throws(KernelError) in
            var next = device.kms
            var writebackFB: UInt32 = 0
            var pointers: [(name: String, address: UInt64)] = []
            for change in properties {
                let object = change.object.rawValue
                guard device.objectType(object, file: file) != nil else { throw fail(.ENOENT) }
                guard let name = SimulatedDRMDevice.propertyName(change.property.rawValue),
                    device.propertyNames(of: object).contains(name)
                else { throw fail(.ENOENT) }
                let value = change.value
                switch name {
                case "type", "WRITEBACK_PIXEL_FORMATS", "IN_FORMATS": throw fail(.EINVAL)  // immutable
                case "ACTIVE": next.active = value != 0
                case "MODE_ID":
                    if value == 0 { (next.mode, next.modeBlob) = (nil, 0); break }
                    guard let blob = device.blobs[UInt32(truncatingIfNeeded: value)],
                        let mode = DRMModeInfo(bytes: blob.bytes)
                    else {
                        throw fail(.EINVAL)
                    }
                    (next.mode, next.modeBlob) = (mode, UInt32(value))
                case "OUT_FENCE_PTR", "WRITEBACK_OUT_FENCE_PTR":
                    // drm_atomic_uapi.c: put_user(-1, fence_ptr) when the property is set: a bad pointer is EFAULT.
                    if value != 0 {
                        guard Self.userPointerIsWritable(value, length: MemoryLayout<Int32>.size) else {
                            throw fail(.EFAULT)
                        }
                        pointers.append((name, value))
                    }
                case "FB_ID":
                    if value != 0, device.framebuffers[UInt32(truncatingIfNeeded: value)] == nil { throw fail(.ENOENT) }
                    next.planeFB[object] = value == 0 ? nil : UInt32(value)
                case "WRITEBACK_FB_ID":
                    if value != 0, device.framebuffers[UInt32(truncatingIfNeeded: value)] == nil { throw fail(.ENOENT) }
                    writebackFB = UInt32(truncatingIfNeeded: value)
                case "CRTC_ID":
                    if value != 0, value != UInt64(SimulatedDRMDevice.crtc) { throw fail(.ENOENT) }
                    if object == SimulatedDRMDevice.primaryPlane || object == SimulatedDRMDevice.cursorPlane {
                        next.planeCRTC[object] = value == 0 ? nil : UInt32(value)
                    } else {
                        next.connectorCRTC[object] = value == 0 ? nil : UInt32(value)
                    }
                default: next.planeRect[object, default: [:]][name] = value
                }
            }
            // drm_atomic_helper_check_modeset and friends.
            let crtcUsers = next.connectorCRTC.filter { $0.value == SimulatedDRMDevice.crtc }.keys
            let modeset =
                next.active != device.kms.active || next.modeBlob != device.kms.modeBlob
                || next.connectorCRTC != device.kms.connectorCRTC
            if modeset && !flags.contains(.allowModeset) { throw fail(.EINVAL) }
            let enabled = next.mode != nil
            if next.active && !enabled { throw fail(.EINVAL) }
            if enabled != !crtcUsers.isEmpty { throw fail(.EINVAL) }  // enabled/connectors mismatch
            if crtcUsers.count > 1 { throw fail(.EINVAL) }  // the virtual and writeback encoders are no clones
            for plane in [SimulatedDRMDevice.primaryPlane, SimulatedDRMDevice.cursorPlane] {
                let hasFB = next.planeFB[plane] != nil, hasCRTC = next.planeCRTC[plane] != nil
                if hasFB != hasCRTC { throw fail(.EINVAL) }  // drm_atomic_plane_check
                guard let fbID = next.planeFB[plane], let fb = device.framebuffers[fbID] else { continue }
                let rect = next.planeRect[plane] ?? [:]
                let srcW = (rect["SRC_W"] ?? 0) >> 16, srcH = (rect["SRC_H"] ?? 0) >> 16
                let srcX = (rect["SRC_X"] ?? 0) >> 16, srcY = (rect["SRC_Y"] ?? 0) >> 16
                if srcX + srcW > UInt64(fb.request.width) || srcY + srcH > UInt64(fb.request.height) {
                    throw fail(.ENOSPC)
                }
                if !next.active { throw fail(.EINVAL) }  // plane on a disabled CRTC
                if plane == SimulatedDRMDevice.primaryPlane, let mode = next.mode {
                    // Primary: full screen, no scaling, visible.
                    let dst = (rect["CRTC_X"] ?? 0, rect["CRTC_Y"] ?? 0, rect["CRTC_W"] ?? 0, rect["CRTC_H"] ?? 0)
                    if dst != (0, 0, UInt64(mode.hdisplay), UInt64(mode.vdisplay)) || srcW != dst.2 || srcH != dst.3 {
                        throw fail(.EINVAL)
                    }
                    if !SimulatedDRMDevice.planeFormats.contains(fb.request.format) { throw fail(.EINVAL) }
                }
                // vkms prepare_fb: drm_gem_fb_vmap of every object.
                if fb.objects.contains(where: { !$0.vmappable }) { throw fail(.EINVAL) }
            }
            if writebackFB != 0 {
                let fb = device.framebuffers[writebackFB]!
                guard next.connectorCRTC[SimulatedDRMDevice.writebackConnector] != nil, next.active,
                    let mode = next.mode
                else {
                    throw fail(.EINVAL)
                }
                if fb.request.width != UInt32(mode.hdisplay) || fb.request.height != UInt32(mode.vdisplay) {
                    throw fail(.EINVAL)
                }
                if !SimulatedDRMDevice.writebackFormats.contains(fb.request.format) { throw fail(.EINVAL) }
                if fb.objects.contains(where: { !$0.vmappable }) { throw fail(.EINVAL) }
                writebackTarget = fb
            }
            if pointers.contains(where: { $0.name == "WRITEBACK_OUT_FENCE_PTR" }) && writebackFB == 0 {
                throw fail(.EINVAL)
            }
            if flags.contains(.pageFlipEvent) && !next.active { throw fail(.EINVAL) }
            if flags.contains(.testOnly) { return }

            // vkms_crtc_atomic_enable/disable: drm_crtc_vblank_on/off.
            if device.kms.active != next.active { device.vblankOff = !next.active }
            device.kms = next
            unshown = sweepClosedFramebuffers(device)
            // The flip lands on the next vblank, or later when a late flip was injected.
            device.frame += 1 + device.lateFlip
            device.lateFlip = 0
            if flags.contains(.pageFlipEvent) {
                // DRM event times are CLOCK_MONOTONIC (drm_crtc_vblank_count_and_time).
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                file.events.append(
                    DRMEvent(
                        type: .flipComplete, userData: userData, seconds: UInt32(now.tv_sec),
                        microseconds: UInt32(now.tv_nsec / 1000),
                        sequence: device.frame, crtc: CRTCID(rawValue: SimulatedDRMDevice.crtc)))
                state.broadcast()
            }
            fencePointers = pointers.map(\.address)
            if writebackTarget != nil { composed = [] }
        }
        // Outside the lock: compose into the writeback buffer, then hand out the fences
        // (signalled: the simulated vblank and writeback complete with the commit).
        if let target = writebackTarget, composed != nil { try vkms.composeWriteback(device: device, into: target) }
        for object in unshown { releaseIfUnused(object) }
        for address in fencePointers {
            let fence = locked { () -> SimulatedSyncFile in
                device.fenceSeqno += 1
                return SimulatedSyncFile(fences: [
                    SimulatedFence(
                        context: device.fenceContext, seqno: device.fenceSeqno, driver: "vkms",
                        timelineName: "vkms-crtc", signalled: true)
                ])
            }
            let fenceFD = try install(.syncFile(fence), label: "sync_file", closeOnExec: true)
            // Checked writable when the property was set; copied bytewise (a user pointer need not be aligned).
            if let pointer = UnsafeMutableRawPointer(bitPattern: UInt(truncatingIfNeeded: address)) {
                withUnsafeBytes(of: fenceFD.rawValue) { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
    }

    public func drmCRTCSequence(_ fd: FileDescriptorNumber, _ crtc: CRTCID) throws(KernelError) -> UInt64 {
        let file = try drm(fd, "DRM_IOCTL_CRTC_GET_SEQUENCE")
        return try locked { () throws(KernelError) in
            // drm_crtc_get_sequence_ioctl: a device with vblanks, a CRTC that exists, and
            // drm_crtc_vblank_get, which fails while drm_crtc_vblank_off holds the counter (a
            // CRTC switched off; one never switched on since boot still counts).
            guard file.device.isKMS else { throw KernelError("DRM_IOCTL_CRTC_GET_SEQUENCE", .EOPNOTSUPP) }
            guard crtc.rawValue == SimulatedDRMDevice.crtc else {
                throw KernelError("DRM_IOCTL_CRTC_GET_SEQUENCE", .ENOENT)
            }
            guard !file.device.vblankOff else { throw KernelError("DRM_IOCTL_CRTC_GET_SEQUENCE", .EINVAL) }
            return UInt64(file.device.frame)
        }
    }

    /// The next flip on the vkms-like device lands `vblanks` vblanks late, as when its commit
    /// work is held up.
    public func delayNextFlip(vblanks: UInt32) {
        locked { drmDevices.values.first { $0.driver == "vkms" }?.lateFlip += vblanks }
    }

    public func drmReadEvents(_ fd: FileDescriptorNumber) throws(KernelError) -> [DRMEvent] {
        let file = try drm(fd, "read")
        return locked {
            defer { file.events = [] }
            return file.events
        }
    }
}

extension SimulatedDRMDevice {
    /// An object of this device that was exported as `dmaBuf`, found through any open file.
    func ownObject(exportedAs dmaBuf: ObjectIdentifier, in files: [Int32: SimulatedFile]) -> SimulatedGEM? {
        for file in files.values {
            guard let drm = file.drm, drm.device === self else { continue }
            if let object = drm.handles.values.first(where: { $0.dmaBuf == dmaBuf }) { return object }
        }
        return nil
    }
}

extension SimulatedKernel {
    /// put_user(-1, fence_ptr) as the kernel does it, safely: the host kernel is asked to write
    /// there first (read(2) from /dev/zero fails with EFAULT where copy_to_user would), so a bad
    /// pointer is an errno, never a crash. False when the address is not writable.
    static func userPointerIsWritable(_ address: UInt64, length: Int) -> Bool {
        guard let pointer = UnsafeMutableRawPointer(bitPattern: UInt(truncatingIfNeeded: address)) else { return false }
        let zero = Glibc.open("/dev/zero", O_RDONLY | O_CLOEXEC)
        guard zero >= 0 else { return false }
        defer { Glibc.close(zero) }
        guard Glibc.read(zero, pointer, length) == length else { return false }
        withUnsafeBytes(of: Int32(-1)) { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return true
    }
}
