import DmaBufKernel
import Foundation

/// A model of the Linux dma-buf interfaces of 6.1 or 6.12 (`Configuration.version`): heaps
/// (`system`, and a CMA-like `reserved` with a capacity), udmabuf with the driver's rules and
/// limits, dma-buf SYNC / names / implicit fences, sync_file and sw_sync, DRM and V4L2 devices.
/// Its errno answers follow the sources (drivers/dma-buf, …) case by case; each rule below names
/// where it comes from; what differs between the versions is in `Version`.
///
/// Buffers are real memfds of the host, so mmap, fd passing and close behave for real.
public final class SimulatedKernel: Kernel, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The kernel series modelled; see `Version` for what differs.
        public var version: Version = .linux6_1
        /// `uname -r`; the version's unless set.
        public var release: String?
        public var physicalMemory: UInt64 = 1 << 30
        /// Heaps under /dev/dma_heap; "reserved" behaves like the CMA heap.
        public var heaps: [String] = ["system", "reserved"]
        public var reservedHeapCapacity: UInt64 = 32 << 20
        public var udmabuf = true
        public var udmabufSizeLimitMB: UInt64 = 64
        public var udmabufListLimit = 1024
        public var swSync = true
        /// DRM devices: a vgem-like card0 and a vkms-like card1 (with its writeback connector).
        public var drm = true
        /// Video nodes: vivid-like instances 000 (single-planar) and 001 (multi-planar), each a
        /// capture and an output node, a vim2m-like mem2mem node, and vivid instance 002 on
        /// vb2-dma-contig (`vivid.allocators=0,0,1`), which imports only contiguous memory.
        public var v4l2 = true
        /// Whether vivid instance 002 (on vb2-dma-contig) is there.
        public var contiguousVivid = true
        /// vicodec's stateful encoder and decoder nodes.
        public var vicodec = true
        /// Paths whose open fails with EACCES, to model a node without permission.
        public var deniedPaths: Set<String> = []
        public init() {}
    }

    public let configuration: Configuration
    let host = LinuxKernel()
    let state = NSCondition()
    var files: [Int32: SimulatedFile] = [:]
    /// Every descriptor handed out through this kernel and not yet closed.
    var descriptors: Set<Int32> = []
    var mappings: [UnsafeMutableRawPointer: (file: SimulatedFile?, length: Int)] = [:]
    var heapUsage: [String: UInt64] = [:]
    private var nextContext: UInt64 = 1
    /// `dma_fence_get_stub()`: the one signalled fence of context 0.
    let stubFence = SimulatedFence(context: 0, seqno: 0, driver: "stub", timelineName: "stub", signalled: true)

    /// The DRM devices by node name ("card0", …).
    let drmDevices: [String: SimulatedDRMDevice]
    /// The video nodes, /dev/video0 and up.
    let videoDevices: [SimulatedVideoDevice]

    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        drmDevices =
            configuration.drm
            ? ["card0": SimulatedDRMDevice(driver: "vgem"), "card1": SimulatedDRMDevice(driver: "vkms")] : [:]
        videoDevices =
            configuration.v4l2
            ? [
                SimulatedVideoDevice(name: "vivid-000-vid-cap", role: .capture),
                SimulatedVideoDevice(name: "vivid-000-vid-out", role: .output),
                SimulatedVideoDevice(name: "vivid-001-vid-cap", role: .capture, multiplanar: true),
                SimulatedVideoDevice(name: "vivid-001-vid-out", role: .output, multiplanar: true),
                SimulatedVideoDevice(name: "vim2m", role: .mem2mem),
            ]
                + (configuration.contiguousVivid
                    ? [
                        SimulatedVideoDevice(name: "vivid-002-vid-cap", role: .capture, allocator: .dmaContig),
                        SimulatedVideoDevice(name: "vivid-002-vid-out", role: .output, allocator: .dmaContig),
                    ] : [])
                + (configuration.vicodec
                    ? [
                        SimulatedVideoDevice(name: "stateful-encoder", role: .mem2mem, codec: .encoder),
                        SimulatedVideoDevice(name: "stateful-decoder", role: .mem2mem, codec: .decoder),
                    ] : [])
            : []
    }

    public var kind: String { "simulated" }
    public var pacesFrames: Bool { false }
    public var pageSize: Int { host.pageSize }
    public var physicalMemory: UInt64 { configuration.physicalMemory }
    public func kernelRelease() throws(KernelError) -> String { configuration.release ?? version.release }
    /// The kernel series modelled.
    public var version: Version { configuration.version }

    // MARK: Accounting, for leak checks

    /// Descriptors opened through this kernel and still open.
    public var openDescriptorCount: Int { locked { descriptors.count } }
    /// Mappings made through this kernel and still mapped.
    public var mappingCount: Int { locked { mappings.count } }
    /// Every ioctl issued, in order, as "NAME" or "NAME detail" (e.g. "DMA_BUF_IOCTL_SYNC START|READ").
    /// Bounded: the last `ioctlLogLimit` entries (a long run must not grow it without end).
    public var ioctlLog: [String] { locked { Array(log) } }
    public static let ioctlLogLimit = 4096
    private var log: ArraySlice<String> = []
    func record(_ entry: String) {
        locked {
            log.append(entry)
            if log.count > Self.ioctlLogLimit { log = log.suffix(Self.ioctlLogLimit / 2) }
        }
    }
    /// GEM handles held by open DRM files plus framebuffers on every DRM device.
    public var drmObjectCount: Int {
        locked {
            var seen = Set<ObjectIdentifier>()
            let handles = files.values.compactMap(\.drm).filter { seen.insert(ObjectIdentifier($0)).inserted }.reduce(0)
            { $0 + $1.handles.count }
            return handles + drmDevices.values.reduce(0) { $0 + $1.framebuffers.count }
        }
    }
    /// Bytes currently allocated from a heap.
    public func heapBytesInUse(_ heap: String) -> UInt64 { locked { heapUsage[heap] ?? 0 } }

    // MARK: Internals

    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        state.lock()
        defer { state.unlock() }
        return try body()
    }

    /// Caller holds the lock.
    func allocateContext() -> UInt64 {
        defer { nextContext += 1 }
        return nextContext
    }

    /// Backs a new kernel object with a host memfd and registers it under that fd.
    func install(
        _ kind: SimulatedFile.Kind, label: String, closeOnExec: Bool, size: UInt64 = 0
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        let flags: MemfdFlags = closeOnExec ? [.allowSealing, .closeOnExec] : .allowSealing
        let fd = try host.memfdCreate(name: "sim:\(label)", flags: flags)
        let inode: UInt64
        do {
            if size > 0 { try host.truncate(fd, length: size) }
            // Like a real dma-buf, the backing file cannot change size.
            try host.addSeals(fd, [.shrink, .grow, .seal])
            inode = try KernelPaths.fdinfoFields(host.fdinfo(fd))["ino"].flatMap { UInt64($0) } ?? 0
        } catch {
            try? host.close(fd)
            throw error
        }
        locked {
            descriptors.insert(fd.rawValue)
            files[fd.rawValue] = SimulatedFile(kind, inode: inode)
        }
        return fd
    }

    /// The simulated file behind `fd`: EBADF when nothing is open there, ENOTTY when it is a
    /// host file the simulation does not model (no such ioctl on it).
    /// EBADF unless `fd` is an open descriptor of this process.
    func requireOpen(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) {
        do { _ = try host.descriptorFlags(fd) } catch { throw KernelError(operation, error.errno) }
    }

    func file(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedFile {
        if let file = locked({ files[fd.rawValue] }) { return file }
        do { _ = try host.descriptorFlags(fd) } catch { throw KernelError(operation, error.errno) }
        throw KernelError(operation, .ENOTTY)
    }

    func dmaBuf(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedDmaBuf {
        guard let buffer = try file(fd, operation).dmaBuf else { throw KernelError(operation, .ENOTTY) }
        return buffer
    }

    /// One reference to `file` went away. Caller holds the lock.
    func drop(_ file: SimulatedFile) {
        file.references -= 1
        guard file.references == 0 else { return }
        switch file.kind {
        case .dmaBuf(let buffer): release(buffer)
        case .drm(let drm): releaseDRMFile(drm)
        case .video(let video): releaseVideoFile(video)
        case .timeline(let timeline):
            timeline.release()
            state.broadcast()
        default: break
        }
    }

    /// The buffer's last reference is gone: unpin its pages and return its capacity. Caller holds the lock.
    /// Whether an importer's dma_buf_vmap of `buffer` works: every exporter modelled has vmap
    /// but udmabuf before 6.2.
    func hasVmap(_ buffer: SimulatedDmaBuf) -> Bool {
        buffer.exporter != "udmabuf" || version.udmabufHasVmap
    }

    func release(_ buffer: SimulatedDmaBuf) {
        for segment in buffer.segments { try? host.close(segment.memfd) }
        if let charge = buffer.charge { heapUsage[charge.heap, default: 0] -= charge.bytes }
    }
}

extension SimulatedKernel {
    /// The device models dispatch calls into.
    var vivid: SimulatedVivid { SimulatedVivid(kernel: self) }
    var vim2m: SimulatedVim2m { SimulatedVim2m(kernel: self) }
    var vicodec: SimulatedVicodec { SimulatedVicodec(kernel: self) }
    var vkms: SimulatedVKMS { SimulatedVKMS(kernel: self) }
}
