import DmaBufKernel
import Synchronization

/// An open DRM device (`/dev/dri/cardN` or `renderD*`), found by driver name rather than by
/// number, which is not stable across boots.
public struct DRMDevice: ~Copyable, Sendable {
    public private(set) var descriptor: OwnedDescriptor
    public let version: DRMVersion
    /// What outlives this owner's borrows: counted GEM handles, and whether the file is open.
    let state: DRMFileState

    public enum Node: String, Sendable { case card, render = "renderD" }

    public init(path: String, kernel: any Kernel) throws(KernelError) {
        let descriptor: OwnedDescriptor
        do { descriptor = try kernel.openOwned(path, flags: [.readWrite, .closeOnExec]) } catch {
            throw error.explained(deviceOpenAdvice(error, node: path))
        }
        version = try descriptor.perform { kernel, fd throws(KernelError) in try kernel.drmVersion(fd) }
        state = DRMFileState(kernel: kernel, fd: descriptor.fd, path: path)
        self.descriptor = descriptor
    }

    /// The device nodes of one kind, in name order.
    public static func nodes(_ node: Node = .card, kernel: any Kernel) throws(KernelError) -> [String] {
        let names: [String]
        do { names = try kernel.listDirectory(KernelPaths.drmDirectory) } catch {
            if error.errno == .ENOENT { return [] }
            throw error
        }
        return names.filter { $0.hasPrefix(node.rawValue) && $0.dropFirst(node.rawValue.count).allSatisfy(\.isNumber) }
            .sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }.map { "\(KernelPaths.drmDirectory)/\($0)" }
    }

    /// Every node of that kind with the name of the driver behind it.
    public static func drivers(
        _ node: Node = .card, kernel: any Kernel
    ) throws(KernelError) -> [(path: String, driver: String)] {
        var found: [(path: String, driver: String)] = []
        for path in try nodes(node, kernel: kernel) {
            let device = try DRMDevice(path: path, kernel: kernel)
            found.append((path, device.driver))
            try device.close()
        }
        return found
    }

    /// Opens the first node whose driver is `driver` (e.g. "vkms", "vgem").
    public init(driver: String, node: Node = .card, kernel: any Kernel) throws(KernelError) {
        var found: [String] = []
        for path in try Self.nodes(node, kernel: kernel) {
            let device = try DRMDevice(path: path, kernel: kernel)
            if device.version.name == driver {
                self = device
                return
            }
            found.append("\(path) (\(device.driver))")
            try device.close()
        }
        throw KernelError(
            "open", .ENOENT, path: "\(KernelPaths.drmDirectory)/\(node.rawValue)*",
            reason:
                "no DRM \(node.rawValue) node is driven by \(driver) (found: \(found.isEmpty ? "none" : found.joined(separator: ", ")))"
        )
    }

    public var fd: FileDescriptorNumber { descriptor.fd }
    public var kernel: any Kernel { descriptor.kernel }
    public var path: String { descriptor.path }
    public var driver: String { version.name }

    public consuming func close() throws(KernelError) {
        state.deviceClosed()
        try descriptor.closeNow()
    }

    deinit {
        // Dropped without close(): the descriptor closes after this, and its number may name
        // another file next; buffers and framebuffers made here must no longer use it.
        state.deviceClosed()
    }

    public func capability(_ capability: DRMCapability) throws(KernelError) -> UInt64 {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.drmCapability(fd, capability.rawValue) }
    }

    /// Asks for a client capability; atomic implies universal planes, writeback needs atomic.
    public func enable(_ capability: DRMClientCapability) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.drmSetClientCapability(fd, capability.rawValue, value: 1)
        }
    }

    /// Waits up to `timeout` for events (page flips) and returns those pending; [] on timeout.
    public func readEvents(timeout: Duration) throws(KernelError) -> [DRMEvent] {
        try descriptor.perform { kernel, fd throws(KernelError) in
            guard
                try kernel.poll(fd, events: .readable, timeoutMilliseconds: timeout.pollMilliseconds).contains(
                    .readable)
            else { return [] }
            return try kernel.drmReadEvents(fd)
        }
    }

    // MARK: Buffers

    /// A dumb buffer: CPU-mappable scanout memory every KMS driver offers.
    public func createDumbBuffer(width: Int, height: Int, bitsPerPixel: Int = 32) throws(KernelError) -> GEMBuffer {
        let operation = "DRM_IOCTL_MODE_CREATE_DUMB"
        let (w, h, bpp): (UInt32, UInt32, UInt32) = (
            try checkedArgument(width, "width", operation: operation, path: path),
            try checkedArgument(height, "height", operation: operation, path: path),
            try checkedArgument(bitsPerPixel, "bitsPerPixel", operation: operation, path: path)
        )
        let created = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.drmCreateDumb(fd, width: w, height: h, bitsPerPixel: bpp)
        }
        return GEMBuffer(
            state: state, handle: state.retain(created.handle, dumb: true), size: Int(created.size),
            pitch: Int(created.pitch))
    }

    /// PRIME export: a dma-buf of this GEM buffer (`DRM_CLOEXEC | DRM_RDWR` by default).
    public func export(
        _ buffer: borrowing GEMBuffer, flags: PrimeFlags = [.closeOnExec, .readWrite]
    ) throws(KernelError) -> DmaBuf {
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.drmPrimeHandleToFD(fd, buffer.handle, flags: flags)
        }
        return DmaBuf(
            OwnedDescriptor(fd, kernel: kernel, path: "PRIME export of \(buffer.handle) from \(path)"),
            length: buffer.size)
    }

    /// PRIME import: the GEM buffer this device sees for `dmaBuf`. Importing the same dma-buf
    /// again gives the same handle; each returned owner releases its share once.
    public func importBuffer(_ dmaBuf: borrowing DmaBuf) throws(KernelError) -> GEMBuffer {
        let dmaBufFD = dmaBuf.fd
        let handle = try state.retain(dumb: false) { () throws(KernelError) in
            try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.drmPrimeFDToHandle(fd, dmaBuf: dmaBufFD)
            }
        }
        return GEMBuffer(state: state, handle: handle, size: dmaBuf.length, pitch: nil)
    }

    /// Maps a dumb buffer of this device for `body`.
    public func withMapping<R>(
        _ buffer: borrowing GEMBuffer, _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) throws -> R {
        let offset = try descriptor.perform { kernel, fd throws(KernelError) in try kernel.drmMapDumb(fd, buffer.handle)
        }
        return try kernel.withMapping(fd, length: buffer.size, protection: [.read, .write], offset: offset, body)
    }

    // MARK: Framebuffers

    /// `DRM_IOCTL_MODE_ADDFB2` over GEM buffers of this device, one per plane.
    public func addFramebuffer(_ request: DRMFramebufferRequest) throws(KernelError) -> Framebuffer {
        let id = try descriptor.perform { kernel, fd throws(KernelError) in try kernel.drmAddFramebuffer(fd, request) }
        return Framebuffer(id: id, width: Int(request.width), height: Int(request.height), state: state)
    }
}

/// The state of one open DRM file shared with the buffers made on it. GEM handles are counted:
/// PRIME import of a dma-buf this file already knows returns the same handle, which must be
/// closed once, after its last user. Once the file is closed the kernel has freed its handles
/// and framebuffers, and its fd number may name another file: nothing is released through it.
final class DRMFileState: Sendable {
    let kernel: any Kernel
    let fd: FileDescriptorNumber
    let path: String
    private struct Handles {
        var counts: [UInt32: (count: Int, dumb: Bool)] = [:]
        var open = true
    }
    private let handles = Mutex(Handles())

    init(kernel: any Kernel, fd: FileDescriptorNumber, path: String) {
        (self.kernel, self.fd, self.path) = (kernel, fd, path)
    }

    func retain(_ handle: GEMHandle, dumb: Bool) -> GEMHandle {
        handles.withLock { $0.counts[handle.rawValue, default: (0, dumb)].count += 1 }
        return handle
    }

    /// Runs `make` (PRIME import) and counts its handle in one critical section: the kernel
    /// hands back the same handle for a dma-buf the file already imported, so a concurrent
    /// last release must not close it between the ioctl and the count.
    func retain(dumb: Bool, _ make: () throws(KernelError) -> GEMHandle) throws(KernelError) -> GEMHandle {
        try handles.withLock { (state) throws(KernelError) -> GEMHandle in
            let handle = try make()
            state.counts[handle.rawValue, default: (0, dumb)].count += 1
            return handle
        }
    }

    /// Drops one share; the last one closes the handle, under the same lock as imports. A
    /// closed device already freed it.
    func release(_ handle: GEMHandle) throws(KernelError) {
        try handles.withLock { (state) throws(KernelError) in
            guard state.open, var entry = state.counts[handle.rawValue] else { return }
            entry.count -= 1
            state.counts[handle.rawValue] = entry.count == 0 ? nil : entry
            guard entry.count == 0 else { return }
            do throws(KernelError) {
                if entry.dumb { try kernel.drmDestroyDumb(fd, handle) } else { try kernel.drmGEMClose(fd, handle) }
            } catch { throw error.at(path) }
        }
    }

    func deviceClosed() { handles.withLock { $0.open = false } }
    var isOpen: Bool { handles.withLock { $0.open } }

    /// Handles still held, for leak checks.
    var liveHandles: Int { handles.withLock { $0.counts.count } }
}
