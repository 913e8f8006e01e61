import DmaBufKernel

/// One display path of a KMS device, driven with atomic commits: a CRTC, its primary plane,
/// a connected output connector and, where the driver has one (vkms), a writeback connector
/// that writes what the CRTC scans out into a framebuffer of ours.
public struct DisplayPipe: Sendable {
    public let crtc: CRTCID
    public let plane: PlaneID
    public let connector: ConnectorID
    public let writeback: ConnectorID?
    public let mode: DRMModeInfo
    /// Pixel formats the primary plane scans out.
    public let planeFormats: [DRMFormat]
    /// Property ids by object and name.
    let properties: [DRMObjectID: [String: PropertyID]]
    /// The plane's FB_ID, which every flip sets: looked up once.
    let framebufferProperty: PropertyID

    /// Finds the first CRTC with a primary plane and a connected connector, in its preferred
    /// mode or the first mode of `size`. Enables the client caps this needs (universal planes,
    /// atomic, writeback connectors).
    public init(device: borrowing DRMDevice, size: (width: Int, height: Int)? = nil) throws {
        let kernel = device.kernel
        let fd = device.fd
        let path = device.path
        func run<T>(_ body: () throws(KernelError) -> T) throws(KernelError) -> T {
            do { return try body() } catch { throw error.at(path) }
        }
        try device.enable(.universalPlanes)
        try device.enable(.atomic)
        let hasWriteback = (try? device.enable(.writebackConnectors)) != nil

        let resources = try run { () throws(KernelError) in try kernel.drmResources(fd) }
        var properties: [DRMObjectID: [String: PropertyID]] = [:]
        func names(_ object: DRMObjectID, _ type: DRMObjectType) throws(KernelError) -> [String: PropertyID] {
            var byName: [String: PropertyID] = [:]
            for (id, _) in try run({ () throws(KernelError) in try kernel.drmObjectProperties(fd, object, type: type) })
            {
                byName[try run { () throws(KernelError) in try kernel.drmProperty(fd, id) }.name] = id
            }
            properties[object] = byName
            return byName
        }

        var output: (ConnectorID, DRMModeInfo)?
        var writeback: ConnectorID?
        var offered: [String] = []
        for id in resources.connectors {
            let info = try run { () throws(KernelError) in try kernel.drmConnector(fd, id) }
            _ = try names(id.object, .connector)
            if info.type == DRMConnectorType.writeback {
                if writeback == nil { writeback = id }
            } else if output == nil, info.connection == .connected {
                let fitting =
                    size.map { size in
                        info.modes.filter { Int($0.hdisplay) == size.width && Int($0.vdisplay) == size.height }
                    } ?? info.modes
                if let mode = fitting.first(where: \.isPreferred) ?? fitting.first { output = (id, mode) }
                offered += info.modes.map { "\($0.hdisplay)x\($0.vdisplay)" }
            }
        }
        guard let (connector, mode) = output else {
            let wanted =
                size.map {
                    "a \($0.width)x\($0.height) mode (offered: \(Set(offered).sorted().joined(separator: ", ")))"
                } ?? "a mode"
            throw DisplayError(path: path, "no connected connector with \(wanted)")
        }
        guard let crtc = resources.crtcs.first else {
            throw DisplayError(path: path, "no CRTC")
        }
        _ = try names(crtc.object, .crtc)

        var primary: DRMPlaneInfo?
        for id in try run({ () throws(KernelError) in try kernel.drmPlanes(fd) }) {
            let byName = try names(id.object, .plane)
            let plane = try run { () throws(KernelError) in try kernel.drmPlane(fd, id) }
            guard plane.possibleCRTCs & 1 != 0, let typeID = byName["type"] else { continue }
            let type = try run { () throws(KernelError) in try kernel.drmObjectProperties(fd, id.object, type: .plane)
            }[typeID]
            let primaryValue = try run { () throws(KernelError) in try kernel.drmProperty(fd, typeID) }.enumValue(
                "Primary")
            if type == primaryValue { primary = plane; break }
        }
        guard let primary else {
            throw DisplayError(path: path, "no primary plane for the first CRTC")
        }
        (self.crtc, self.plane, self.connector, self.mode) = (crtc, primary.id, connector, mode)
        self.writeback = hasWriteback ? writeback : nil
        self.planeFormats = primary.formats
        self.properties = properties
        guard let framebufferProperty = properties[primary.id.object]?["FB_ID"] else {
            throw DisplayError(path: path, "plane \(primary.id) has no property FB_ID")
        }
        self.framebufferProperty = framebufferProperty
    }

    func property(_ object: DRMObjectID, _ name: String) throws(DisplayError) -> PropertyID {
        guard let id = properties[object]?[name] else {
            throw DisplayError(path: nil, "object \(object) has no property \(name)")
        }
        return id
    }

    /// Shows `framebuffer` full screen (1:1 from its top-left corner) with a modeset, or writes
    /// it into the framebuffer `writebackInto` through the writeback connector. Returns the
    /// sync_files that signal when the frame is on screen and when the writeback is complete;
    /// with `pageFlipEvent` a flip-complete event carrying that value is queued on the device.
    @discardableResult
    public func show(
        _ framebuffer: borrowing Framebuffer, on device: borrowing DRMDevice, writebackInto: FramebufferID? = nil,
        pageFlipEvent userData: UInt64? = nil
    ) throws -> ShownFrame {
        try commit(framebuffer.id, on: device, writebackInto: writebackInto, event: userData, modeset: true)
    }

    /// `show` by framebuffer id (for framebuffers kept in containers).
    @discardableResult
    public func show(
        _ framebuffer: FramebufferID, on device: borrowing DRMDevice, writebackInto: FramebufferID? = nil,
        pageFlipEvent userData: UInt64? = nil
    ) throws -> ShownFrame {
        try commit(framebuffer, on: device, writebackInto: writebackInto, event: userData, modeset: true)
    }

    /// `flip` by framebuffer id.
    @discardableResult
    public func flip(
        to framebuffer: FramebufferID, on device: borrowing DRMDevice, writebackInto: FramebufferID? = nil,
        pageFlipEvent userData: UInt64? = nil
    ) throws -> ShownFrame {
        try commit(framebuffer, on: device, writebackInto: writebackInto, event: userData, modeset: false)
    }

    /// Flips the plane to another framebuffer of the same size on the running CRTC: no
    /// modeset, so outputs stay as the last `show` set them (a writeback job needs `show`'s
    /// writeback routing).
    @discardableResult
    public func flip(
        to framebuffer: borrowing Framebuffer, on device: borrowing DRMDevice, writebackInto: FramebufferID? = nil,
        pageFlipEvent userData: UInt64? = nil
    ) throws -> ShownFrame {
        try commit(framebuffer.id, on: device, writebackInto: writebackInto, event: userData, modeset: false)
    }

    /// The CRTC's vblank count now (DRM_IOCTL_CRTC_GET_SEQUENCE): a flip committed now lands on
    /// the next one unless the display is late. EINVAL after the CRTC was switched off.
    public func vblankCount(on device: borrowing DRMDevice) throws(KernelError) -> UInt64 {
        let crtc = crtc
        return try device.descriptor.perform { kernel, fd throws(KernelError) in try kernel.drmCRTCSequence(fd, crtc) }
    }

    private func commit(
        _ framebuffer: FramebufferID, on device: borrowing DRMDevice, writebackInto: FramebufferID?,
        event userData: UInt64?, modeset: Bool
    ) throws -> ShownFrame {
        // The out-fences' slots, on the stack: a flip with an event asks for none.
        var fences: (onScreen: Int32, writeback: Int32) = (-1, -1)
        return try withUnsafeMutablePointer(to: &fences) { fences in
            try commit(
                framebuffer, on: device, writebackInto: writebackInto, event: userData, modeset: modeset,
                fences: UnsafeMutableRawPointer(fences).assumingMemoryBound(to: Int32.self))
        }
    }

    private func commit(
        _ framebuffer: FramebufferID, on device: borrowing DRMDevice, writebackInto: FramebufferID?,
        event userData: UInt64?, modeset: Bool, fences: UnsafeMutablePointer<Int32>
    ) throws -> ShownFrame {
        let kernel = device.kernel
        let fd = device.fd
        let fenceAddress = { (index: Int) in UInt64(UInt(bitPattern: fences + index)) }

        var changes: [DRMAtomicProperty] = []
        func set(_ object: DRMObjectID, _ name: String, _ value: UInt64) throws {
            changes.append(DRMAtomicProperty(object: object, property: try property(object, name), value: value))
        }
        var blob: BlobID?
        defer { if let blob { try? kernel.drmDestroyBlob(fd, blob) } }
        if modeset {
            let modeBlob = try device.descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.drmCreateBlob(fd, mode.bytes)
            }
            blob = modeBlob
            try set(crtc.object, "MODE_ID", UInt64(modeBlob.rawValue))
            try set(crtc.object, "ACTIVE", 1)
            // The CRTC drives the writeback connector instead of the display connector: their
            // encoders cannot be clones (vkms on 6.1 fails the commit with EINVAL otherwise).
            try set(connector.object, "CRTC_ID", writebackInto == nil ? UInt64(crtc.rawValue) : 0)
            let width = UInt64(mode.hdisplay), height = UInt64(mode.vdisplay)
            try set(plane.object, "CRTC_ID", UInt64(crtc.rawValue))
            for (name, value) in [
                ("SRC_X", 0), ("SRC_Y", 0), ("SRC_W", width << 16), ("SRC_H", height << 16),
                ("CRTC_X", 0), ("CRTC_Y", 0), ("CRTC_W", width), ("CRTC_H", height),
            ] as [(String, UInt64)] {
                try set(plane.object, name, value)
            }
        }
        // With a page-flip event the event says when the frame is on screen: no out-fence (a
        // sync_file and a descriptor per frame) is asked for.
        if userData == nil { try set(crtc.object, "OUT_FENCE_PTR", fenceAddress(0)) }
        changes.append(
            DRMAtomicProperty(object: plane.object, property: framebufferProperty, value: UInt64(framebuffer.rawValue)))
        if let target = writebackInto {
            guard let writeback else {
                throw DisplayError(path: device.path, "\(device.driver) has no writeback connector")
            }
            try set(writeback.object, "CRTC_ID", UInt64(crtc.rawValue))
            try set(writeback.object, "WRITEBACK_FB_ID", UInt64(target.rawValue))
            try set(writeback.object, "WRITEBACK_OUT_FENCE_PTR", fenceAddress(1))
        }
        var flags: DRMAtomicFlags = modeset ? .allowModeset : []
        if userData != nil { flags.insert(.pageFlipEvent) }
        do { try kernel.drmAtomicCommit(fd, changes, flags: flags, userData: userData ?? 0) } catch {
            throw error.at(device.path).explained(
                error.errno == .EINVAL && device.driver == "vkms"
                    ? "vkms composes on the CPU, so every imported dma-buf must support vmap (udmabuf's has it from Linux 6.2), a writeback framebuffer must be \(mode.hdisplay)x\(mode.vdisplay) in a writeback format, and a flip cannot change outputs"
                    : nil)
        }

        let onScreen =
            userData != nil
            ? nil
            : SyncFile(
                OwnedDescriptor(
                    FileDescriptorNumber(rawValue: fences[0]), kernel: kernel, path: "out-fence of CRTC \(crtc)"))
        guard writebackInto != nil else { return ShownFrame(onScreen: onScreen, writeback: nil) }
        let written = SyncFile(
            OwnedDescriptor(
                FileDescriptorNumber(rawValue: fences[1]), kernel: kernel,
                path: "writeback out-fence of connector \(writeback!)"))
        return ShownFrame(onScreen: onScreen, writeback: written)
    }

    /// Turns the CRTC and its plane off (and detaches the connectors).
    public func disable(on device: borrowing DRMDevice) throws {
        var changes: [DRMAtomicProperty] = []
        func set(_ object: DRMObjectID, _ name: String, _ value: UInt64) throws {
            changes.append(DRMAtomicProperty(object: object, property: try property(object, name), value: value))
        }
        try set(plane.object, "FB_ID", 0)
        try set(plane.object, "CRTC_ID", 0)
        try set(connector.object, "CRTC_ID", 0)
        if let writeback { try set(writeback.object, "CRTC_ID", 0) }
        try set(crtc.object, "MODE_ID", 0)
        try set(crtc.object, "ACTIVE", 0)
        do {
            try device.kernel.drmAtomicCommit(device.fd, changes, flags: DRMAtomicFlags.allowModeset, userData: 0)
        } catch {
            throw error.at(device.path)
        }
    }
}

/// The out-fences of one atomic commit: when the frame is on screen (unless a page-flip event
/// was asked for instead), and when its writeback (if one was asked for) is complete.
public struct ShownFrame: ~Copyable {
    public let onScreen: SyncFile?
    public let writeback: SyncFile?

    /// Waits for the writeback job's fence: false without a writeback job or on timeout.
    public func writebackDone(within timeout: Duration) throws(KernelError) -> Bool {
        switch writeback {
        case .some(let fence): try fence.wait(timeout: timeout)
        case .none: false
        }
    }

    public consuming func close() throws(KernelError) {
        try onScreen?.close()
        try writeback?.close()
    }
}

/// A display without what a `DisplayPipe` needs (a connected connector with the mode asked
/// for, a CRTC, a primary plane, a property, a writeback connector): the kernel answered every
/// query; the device does not offer it.
public struct DisplayError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String?
    public var problem: String
    public init(path: String?, _ problem: String) { (self.path, self.problem) = (path, problem) }
    public var description: String { path.map { "display \($0): \(problem)" } ?? "display: \(problem)" }
}
