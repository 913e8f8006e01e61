import DmaBufKernel
import Foundation

/// A model of the Linux 6.1 dma-buf interfaces: heaps (`system`, and a CMA-like `reserved`
/// with a capacity), udmabuf with the driver's rules and limits, dma-buf SYNC / names /
/// implicit fences, sync_file and sw_sync. Its errno answers follow the 6.1 sources
/// (drivers/dma-buf) case by case; each rule below names where it comes from.
///
/// Buffers are real memfds of the host, so mmap, fd passing and close behave for real.
public final class SimulatedKernel: Kernel, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var release = "6.1.0-dmabufkit-simulated"
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
        /// capture and an output node, and a vim2m-like mem2mem node.
        public var v4l2 = true
        /// Paths whose open fails with EACCES, to model a node without permission.
        public var deniedPaths: Set<String> = []
        public init() {}
    }

    public let configuration: Configuration
    let host = LinuxKernel()
    let state = NSCondition()
    var files: [Int32: SimulatedFile] = [:]
    /// Every descriptor handed out through this kernel and not yet closed.
    private var descriptors: Set<Int32> = []
    var mappings: [UnsafeMutableRawPointer: (file: SimulatedFile?, length: Int)] = [:]
    private var heapUsage: [String: UInt64] = [:]
    private var nextContext: UInt64 = 1
    /// `dma_fence_get_stub()`: the one signalled fence of context 0.
    private let stubFence = SimulatedFence(context: 0, seqno: 0, driver: "stub", timelineName: "stub", signalled: true)

    /// The DRM devices by node name ("card0", …).
    let drmDevices: [String: SimulatedDRMDevice]
    /// The video nodes, /dev/video0 and up.
    let videoDevices: [SimulatedVideoDevice]

    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        drmDevices = configuration.drm ? ["card0": SimulatedDRMDevice(driver: "vgem"), "card1": SimulatedDRMDevice(driver: "vkms")] : [:]
        videoDevices = configuration.v4l2
            ? [SimulatedVideoDevice(name: "vivid-000-vid-cap", role: .capture), SimulatedVideoDevice(name: "vivid-000-vid-out", role: .output),
               SimulatedVideoDevice(name: "vivid-001-vid-cap", role: .capture, multiplanar: true),
               SimulatedVideoDevice(name: "vivid-001-vid-out", role: .output, multiplanar: true),
               SimulatedVideoDevice(name: "vim2m", role: .mem2mem)] : []
    }

    public var kind: String { "simulated" }
    public var pacesFrames: Bool { false }
    public var pageSize: Int { host.pageSize }
    public var physicalMemory: UInt64 { configuration.physicalMemory }
    public func kernelRelease() throws(KernelError) -> String { configuration.release }

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
            let handles = files.values.compactMap(\.drm).filter { seen.insert(ObjectIdentifier($0)).inserted }.reduce(0) { $0 + $1.handles.count }
            return handles + drmDevices.values.reduce(0) { $0 + $1.framebuffers.count }
        }
    }
    /// Bytes currently allocated from a heap.
    public func heapBytesInUse(_ heap: String) -> UInt64 { locked { heapUsage[heap] ?? 0 } }

    // MARK: Files

    public func open(_ path: String, flags: OpenFlags) throws(KernelError) -> FileDescriptorNumber {
        let kind: SimulatedFile.Kind
        if configuration.deniedPaths.contains(path) { throw KernelError("open", .EACCES, path: path) }
        if path.hasPrefix(KernelPaths.dmaHeapDirectory + "/"),
            configuration.heaps.contains(String(path.dropFirst(KernelPaths.dmaHeapDirectory.count + 1)))
        {
            kind = .heap(name: String(path.dropFirst(KernelPaths.dmaHeapDirectory.count + 1)))
        } else if let device = drmDevice(at: path) {
            kind = .drm(SimulatedDRMFile(device: device))
        } else if let device = videoDevice(at: path) {
            kind = .video(try openVideo(device, nonBlocking: flags.contains(.nonBlocking)))
        } else if path == KernelPaths.udmabuf && configuration.udmabuf {
            kind = .udmabufDevice
        } else if path == KernelPaths.swSync && configuration.swSync {
            // sw_sync_debugfs_open: a new timeline named after the task.
            let name = truncated(ProcessInfo.processInfo.processName, to: 15)
            kind = .timeline(locked { SimulatedTimeline(context: allocateContext(), name: name) })
        } else {
            throw KernelError("open", .ENOENT, path: path)
        }
        return try install(kind, label: path, closeOnExec: flags.contains(.closeOnExec))
    }

    /// The tables first, then the host's number: once the host closes it, another thread may
    /// get the same number for a new file, whose entries must not be the ones removed here.
    public func close(_ fd: FileDescriptorNumber) throws(KernelError) {
        try locked { () throws(KernelError) in
            try requireOpen(fd, "close")
            descriptors.remove(fd.rawValue)
            if let file = files.removeValue(forKey: fd.rawValue) { drop(file) }
        }
        try host.close(fd)
    }

    public func duplicate(_ fd: FileDescriptorNumber) throws(KernelError) -> FileDescriptorNumber {
        let copy = try host.duplicate(fd)
        locked {
            descriptors.insert(copy.rawValue)
            if let file = files[fd.rawValue] {
                file.references += 1
                files[copy.rawValue] = file
            }
        }
        return copy
    }

    public func readFile(_ path: String) throws(KernelError) -> String {
        switch path {
        case KernelPaths.udmabufSizeLimit where configuration.udmabuf: return "\(configuration.udmabufSizeLimitMB)\n"
        case KernelPaths.udmabufListLimit where configuration.udmabuf: return "\(configuration.udmabufListLimit)\n"
        case KernelPaths.dmaBufDebugList: return locked { bufinfo() }
        default:
            let sysfs = KernelPaths.videoSysfsDirectory + "/video"
            if path.hasPrefix(sysfs), path.hasSuffix("/name"), let index = Int(path.dropFirst(sysfs.count).dropLast("/name".count)),
                videoDevices.indices.contains(index)
            {
                return videoDevices[index].name + "\n"
            }
            let prefix = "/proc/self/fdinfo/"
            if path.hasPrefix(prefix), let fd = Int32(path.dropFirst(prefix.count)) {
                return try fdinfo(FileDescriptorNumber(rawValue: fd))
            }
            throw KernelError("open", .ENOENT, path: path)
        }
    }

    /// No writable control files are modelled (no debugfs CRC, …).
    public func writeFile(_ path: String, _ text: String) throws(KernelError) {
        throw KernelError("open", .ENOENT, path: path)
    }

    public func read(_ fd: FileDescriptorNumber, maxLength: Int) throws(KernelError) -> [UInt8] {
        if maxLength < 0 { throw KernelError("read", .EINVAL, reason: "length \(maxLength) is negative; no syscall issued") }
        guard let file = locked({ files[fd.rawValue] }) else { return try host.read(fd, maxLength: maxLength) }
        // A DRM file reads its events (through drmReadEvents); the others have no read op.
        if file.drm != nil { throw KernelError("read", .EINVAL, reason: "use drmReadEvents") }
        throw KernelError("read", .EINVAL)
    }

    public func listDirectory(_ path: String) throws(KernelError) -> [String] {
        if path == KernelPaths.drmDirectory, !drmDevices.isEmpty { return drmDevices.keys.sorted() }
        if path == KernelPaths.videoSysfsDirectory, !videoDevices.isEmpty { return videoDevices.indices.map { "video\($0)" } }
        guard path == KernelPaths.dmaHeapDirectory, !configuration.heaps.isEmpty else {
            throw KernelError("opendir", .ENOENT, path: path)
        }
        return configuration.heaps.sorted()
    }

    public func fdinfo(_ fd: FileDescriptorNumber) throws(KernelError) -> String {
        // The generic lines (pos, flags, mnt_id, ino) are the host's, then dma_buf_show_fdinfo's.
        let generic = try host.fdinfo(fd)
        return locked {
            guard let file = files[fd.rawValue], let buffer = file.dmaBuf else { return generic }
            var text = generic.split(separator: "\n").prefix(4).joined(separator: "\n") + "\n"
            text += "size:\t\(buffer.size)\ncount:\t\(file.references)\nexp_name:\t\(buffer.exporter)\n"
            if let name = buffer.name { text += "name:\t\(name)\n" }
            return text
        }
    }

    /// dma_buf_debug_show: every live dma-buf, whether held by descriptors or only by mappings.
    /// Caller holds the lock.
    private func bufinfo() -> String {
        var seen = Set<ObjectIdentifier>()
        let live = (files.values.map(Optional.some) + mappings.values.map(\.file)).compactMap { $0 }
            .filter { $0.dmaBuf != nil && seen.insert(ObjectIdentifier($0)).inserted }
        var text = "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
        for file in live.sorted(by: { $0.inode < $1.inode }) {
            let buffer = file.dmaBuf!
            let numbers = String(
                format: "%08llu\t%08x\t%08x\t%08ld", buffer.size, buffer.writable ? O_RDWR : O_RDONLY,
                buffer.writable ? 0x1f : 0x1d, file.references)
            text += "\(numbers)\t\(buffer.exporter)\t\(String(format: "%08llu", file.inode))\t\(buffer.name ?? "<none>")\n"
            text += "\tAttached Devices:\nTotal 0 devices attached\n\n"
        }
        text += "\nTotal \(live.count) objects, \(live.reduce(0) { $0 + $1.dmaBuf!.size }) bytes\n"
        return text
    }

    public func descriptorFlags(_ fd: FileDescriptorNumber) throws(KernelError) -> Int32 { try host.descriptorFlags(fd) }


    // MARK: Memory

    public func mmap(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, shared: Bool, offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer {
        guard let file = locked({ files[fd.rawValue] }) else {
            return try host.mmap(fd, length: length, protection: protection, shared: shared, offset: offset)
        }
        if let drm = file.drm { return try mapGEM(of: drm, file: file, length: length, protection: protection, offset: offset) }
        if let video = file.video { return try mapVideoBuffer(video, file: file, length: length, protection: protection, offset: offset) }
        guard let buffer = file.dmaBuf else {
            throw KernelError("mmap", .ENODEV)  // heap, udmabuf and sync_file files have no mmap
        }
        let page = UInt64(pageSize)
        let pages = (UInt64(length) + page - 1) / page
        // do_mmap: zero length or an unaligned offset.
        if length == 0 || offset % page != 0 { throw KernelError("mmap", .EINVAL) }
        // do_mmap: a shared writable mapping needs a file opened for writing.
        if shared && protection.contains(.write) && !buffer.writable { throw KernelError("mmap", .EACCES) }
        // dma_buf_mmap_internal: "check for overflowing the buffer's size".
        if offset / page + pages > buffer.size / page { throw KernelError("mmap", .EINVAL) }
        if !shared {
            switch buffer.mmapRule {
            case .sharedOnly: throw KernelError("mmap", .EINVAL)  // cma_heap_mmap, mmap_udmabuf
            case .privateSinglePageOnly where pages > 1: throw KernelError("mmap", .EINVAL)  // remap_pfn_range on a COW vma
            default: break
            }
        }
        let base: UnsafeMutableRawPointer
        if buffer.segments.isEmpty {
            base = try host.mmap(fd, length: length, protection: protection, shared: shared, offset: offset)
        } else {
            base = try mapSegments(buffer.segments, length: Int(pages * page), protection: protection, shared: shared, offset: offset)
        }
        locked {
            file.references += 1
            mappings[base] = (file, length)
        }
        return base
    }

    /// A udmabuf's pages come from several memfds: reserve the range, then map each piece in place.
    func mapSegments(
        _ segments: [SimulatedSegment], length: Int, protection: MemoryProtection, shared: Bool, offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer {
        guard let reserved = Foundation.mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            reserved != MAP_FAILED
        else { throw KernelError("mmap", Errno(rawValue: errno)) }
        var position: UInt64 = 0  // offset within the buffer of the current segment
        for segment in segments {
            let start = max(position, offset)
            let end = min(position + segment.size, offset + UInt64(length))
            if start < end {
                let target = reserved + Int(start - offset)
                let placed = Foundation.mmap(
                    target, Int(end - start), protection.rawValue, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED,
                    segment.memfd.rawValue, off_t(segment.offset + (start - position)))
                if placed == MAP_FAILED {
                    let failure = errno
                    Foundation.munmap(reserved, length)
                    throw KernelError("mmap", Errno(rawValue: failure))
                }
            }
            position += segment.size
        }
        return reserved
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(KernelError) {
        let page = pageSize
        // The record first, then the host's mapping: once unmapped, another thread may map a
        // new buffer at the same address.
        let record = locked { mappings.removeValue(forKey: address) }
        // Segmented mappings were made page-rounded; unmap all of it.
        let span = record.map { ($0.length + page - 1) / page * page } ?? length
        do { try host.munmap(address, length: max(span, length)) } catch {
            if let record { locked { mappings[address] = record } }
            throw error
        }
        if let file = record?.file { locked { drop(file) } }
    }

    public func poll(_ fd: FileDescriptorNumber, events: PollEvents, timeoutMilliseconds: Int32)
        throws(KernelError) -> PollEvents
    {
        guard let file = locked({ files[fd.rawValue] }) else {
            return try host.poll(fd, events: events, timeoutMilliseconds: timeoutMilliseconds)
        }
        // sync_file_poll: readable once signalled. dma_buf_poll: readable once writers are done,
        // writable once everyone is.
        let ready: () -> PollEvents = {
            switch file.kind {
            case .syncFile(let sync): return sync.isSignalled ? [.readable] : []
            case .drm(let drm): return drm.events.isEmpty ? [] : [.readable]  // drm_poll: pending events
            case .video(let video): return self.videoReadiness(video)
            case .dmaBuf(let buffer):
                var result: PollEvents = []
                if buffer.pendingFences(forWrite: false).isEmpty { result.insert(.readable) }
                if buffer.pendingFences(forWrite: true).isEmpty { result.insert(.writable) }
                return result
            default: return []
            }
        }
        let deadline = timeoutMilliseconds < 0 ? Date.distantFuture : Date(timeIntervalSinceNow: Double(timeoutMilliseconds) / 1000)
        state.lock()
        defer { state.unlock() }
        // Errors and hang-ups are reported whether asked for or not.
        let reported = events.union([.error, .hangUp])
        while true {
            let now = ready().intersection(reported)
            if !now.isEmpty || !state.wait(until: deadline) { return ready().intersection(reported) }
        }
    }

    public func memfdCreate(name: String, flags: UInt32) throws(KernelError) -> FileDescriptorNumber {
        let fd = try host.memfdCreate(name: name, flags: flags)
        locked { _ = descriptors.insert(fd.rawValue) }
        return fd
    }

    public func truncate(_ fd: FileDescriptorNumber, length: UInt64) throws(KernelError) {
        if locked({ files[fd.rawValue] }) != nil { throw KernelError("ftruncate", .EINVAL) }
        try host.truncate(fd, length: length)
    }

    public func addSeals(_ fd: FileDescriptorNumber, _ seals: Seals) throws(KernelError) {
        if locked({ files[fd.rawValue] }) != nil { throw KernelError("F_ADD_SEALS", .EINVAL) }
        try host.addSeals(fd, seals)
    }

    public func seals(_ fd: FileDescriptorNumber) throws(KernelError) -> Seals {
        if locked({ files[fd.rawValue] }) != nil { throw KernelError("F_GET_SEALS", .EINVAL) }
        return try host.seals(fd)
    }

    // MARK: dma-heap (drivers/dma-buf/dma-heap.c, heaps/system_heap.c, heaps/cma_heap.c)

    public func dmaHeapAllocate(
        heap: FileDescriptorNumber, length: UInt64, fdFlags: UInt32, heapFlags: UInt64, fdField: UInt32
    ) throws(KernelError) -> FileDescriptorNumber {
        let operation = "DMA_HEAP_IOCTL_ALLOC"
        record(operation)
        guard case .heap(let name) = try file(heap, operation).kind else { throw KernelError(operation, .ENOTTY) }
        if fdField != 0 { throw KernelError(operation, .EINVAL) }
        let validFDFlags = UInt32(O_CLOEXEC | O_ACCMODE)
        if fdFlags & ~validFDFlags != 0 { throw KernelError(operation, .EINVAL) }
        if heapFlags != 0 { throw KernelError(operation, .EINVAL) }
        let page = UInt64(pageSize)
        let aligned = (length &+ page &- 1) & ~(page - 1)  // PAGE_ALIGN, wrapping like the kernel's
        if aligned == 0 { throw KernelError(operation, .EINVAL) }
        let capacity = name == "system" ? configuration.physicalMemory : configuration.reservedHeapCapacity
        try locked { () throws(KernelError) in
            let used = heapUsage[name] ?? 0
            if aligned > capacity || used + aligned > capacity { throw KernelError(operation, .ENOMEM) }
            heapUsage[name] = used + aligned
        }
        let buffer = SimulatedDmaBuf(
            exporter: name, size: aligned, writable: fdFlags & UInt32(O_ACCMODE) != UInt32(O_RDONLY),
            mmapRule: name == "system" ? .privateSinglePageOnly : .sharedOnly, charge: (name, aligned))
        do {
            return try install(
                .dmaBuf(buffer), label: "dmabuf:\(name)", closeOnExec: fdFlags & UInt32(O_CLOEXEC) != 0, size: aligned)
        } catch {
            locked { release(buffer) }
            throw error
        }
    }

    // MARK: udmabuf (drivers/dma-buf/udmabuf.c)

    public func udmabufCreate(
        device: FileDescriptorNumber, memfd: FileDescriptorNumber, flags: UInt32, offset: UInt64, size: UInt64
    ) throws(KernelError) -> FileDescriptorNumber {
        record("UDMABUF_CREATE")
        return try createUdmabuf(
            "UDMABUF_CREATE", device: device, flags: flags, items: [UdmabufItem(memfd: memfd, offset: offset, size: size)])
    }

    public func udmabufCreateList(device: FileDescriptorNumber, flags: UInt32, items: [UdmabufItem])
        throws(KernelError) -> FileDescriptorNumber
    {
        let operation = "UDMABUF_CREATE_LIST"
        record(operation)
        guard case .udmabufDevice = try file(device, operation).kind else { throw KernelError(operation, .ENOTTY) }
        // udmabuf_ioctl_create_list: the count is checked before the items are read.
        if items.count > configuration.udmabufListLimit { throw KernelError(operation, .EINVAL) }
        return try createUdmabuf(operation, device: device, flags: flags, items: items)
    }

    private func createUdmabuf(_ operation: String, device: FileDescriptorNumber, flags: UInt32, items: [UdmabufItem])
        throws(KernelError) -> FileDescriptorNumber
    {
        guard case .udmabufDevice = try file(device, operation).kind else { throw KernelError(operation, .ENOTTY) }
        let page = UInt64(pageSize)
        let pageLimit = (configuration.udmabufSizeLimitMB << 20) / page
        var pageCount: UInt64 = 0
        // udmabuf_create, first pass: alignment and the size limit, for every item.
        for item in items {
            if item.offset % page != 0 || item.size % page != 0 { throw KernelError(operation, .EINVAL) }
            pageCount += item.size / page
            if pageCount > pageLimit { throw KernelError(operation, .EINVAL) }
        }
        if pageCount == 0 { throw KernelError(operation, .EINVAL) }
        // Second pass: each memfd must be shmem, sealed against shrinking and not against writing.
        var segments: [SimulatedSegment] = []
        func undo() { for segment in segments { try? host.close(segment.memfd) } }
        for item in items {
            let isSimulatedObject = locked { files[item.memfd.rawValue] != nil }
            guard !isSimulatedObject, let seals = try? host.seals(item.memfd) else {
                undo()
                throw KernelError(operation, .EBADFD)
            }
            if !seals.contains(.shrink) || !seals.isDisjoint(with: [.write, .futureWrite]) {
                undo()
                throw KernelError(operation, .EINVAL)
            }
            // shmem_read_mapping_page: a page at or past i_size is -EINVAL (so is a range that wraps).
            var status = stat()
            let (end, wraps) = item.offset.addingReportingOverflow(item.size)
            guard fstat(item.memfd.rawValue, &status) == 0, !wraps,
                item.size == 0 || end - page < UInt64(status.st_size)
            else {
                undo()
                throw KernelError(operation, .EINVAL)
            }
            do {
                segments.append(SimulatedSegment(memfd: try host.duplicate(item.memfd), offset: item.offset, size: item.size))
            } catch {
                undo()
                throw KernelError(operation, error.errno)
            }
        }
        let buffer = SimulatedDmaBuf(
            exporter: "udmabuf", size: pageCount * page, writable: true, mmapRule: .sharedOnly, segments: segments)
        do {
            return try install(.dmaBuf(buffer), label: "udmabuf", closeOnExec: flags & UdmabufFlags.closeOnExec != 0)
        } catch {
            undo()
            throw error
        }
    }

    // MARK: dma-buf (drivers/dma-buf/dma-buf.c)

    public func dmaBufSync(_ fd: FileDescriptorNumber, flags: UInt64) throws(KernelError) {
        record("DMA_BUF_IOCTL_SYNC " + syncDescription(flags))
        let buffer = try dmaBuf(fd, "DMA_BUF_IOCTL_SYNC")
        if flags & ~DmaBufSyncFlags.validMask != 0 || flags & DmaBufSyncFlags.readWrite == 0 {
            throw KernelError("DMA_BUF_IOCTL_SYNC", .EINVAL)
        }
        guard flags & DmaBufSyncFlags.end == 0 else { return }
        // __dma_buf_begin_cpu_access waits for the implicit fences.
        let write = flags & DmaBufSyncFlags.write != 0
        state.lock()
        while !buffer.pendingFences(forWrite: write).isEmpty { state.wait() }
        state.unlock()
    }

    public func dmaBufSetName(_ fd: FileDescriptorNumber, _ name: String) throws(KernelError) {
        record("DMA_BUF_SET_NAME_B")
        let buffer = try dmaBuf(fd, "DMA_BUF_SET_NAME_B")
        // strndup_user(buf, DMA_BUF_NAME_LEN): the name and its NUL must fit in 32 bytes.
        if name.utf8.count + 1 > dmaBufNameCapacity { throw KernelError("DMA_BUF_SET_NAME_B", .EINVAL) }
        locked { buffer.name = name }
    }

    public func dmaBufExportSyncFile(_ fd: FileDescriptorNumber, flags: UInt32) throws(KernelError) -> FileDescriptorNumber {
        let operation = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE"
        record(operation)
        let buffer = try dmaBuf(fd, operation)
        try checkSyncFileFlags(flags, operation)
        let sync = locked {
            let fences = buffer.pendingFences(forWrite: UInt64(flags) & DmaBufSyncFlags.write != 0)
            return SimulatedSyncFile(
                fences: fences.isEmpty ? [stubFence] : fences, arrayContext: fences.count > 1 ? allocateContext() : 0)
        }
        return try install(.syncFile(sync), label: "sync_file", closeOnExec: true)
    }

    public func dmaBufImportSyncFile(_ fd: FileDescriptorNumber, flags: UInt32, syncFile: FileDescriptorNumber)
        throws(KernelError)
    {
        let operation = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE"
        record(operation)
        let buffer = try dmaBuf(fd, operation)
        try checkSyncFileFlags(flags, operation)
        guard let sync = locked({ files[syncFile.rawValue]?.syncFile }) else { throw KernelError(operation, .EINVAL) }
        let usage: FenceUsage = UInt64(flags) & DmaBufSyncFlags.write != 0 ? .write : .read
        locked { for fence in sync.fences { buffer.add(fence, usage: usage) } }
    }

    private func syncDescription(_ flags: UInt64) -> String {
        var parts = [flags & DmaBufSyncFlags.end != 0 ? "END" : "START"]
        if flags & DmaBufSyncFlags.read != 0 { parts.append("READ") }
        if flags & DmaBufSyncFlags.write != 0 { parts.append("WRITE") }
        return parts.joined(separator: "|")
    }

    private func checkSyncFileFlags(_ flags: UInt32, _ operation: String) throws(KernelError) {
        let rw = UInt32(DmaBufSyncFlags.readWrite)
        if flags & ~rw != 0 || flags & rw == 0 { throw KernelError(operation, .EINVAL) }
    }

    // MARK: sync_file (drivers/dma-buf/sync_file.c), sw_sync (drivers/dma-buf/sw_sync.c)

    public func syncFileMerge(_ fd: FileDescriptorNumber, _ other: FileDescriptorNumber, name: String)
        throws(KernelError) -> FileDescriptorNumber
    {
        let operation = "SYNC_IOC_MERGE"
        record(operation)
        guard let first = try file(fd, operation).syncFile else { throw KernelError(operation, .ENOTTY) }
        guard let second = locked({ files[other.rawValue]?.syncFile }) else { throw KernelError(operation, .ENOENT) }
        let merged = locked {
            // dma_fence_unwrap_merge: drop signalled fences, keep the latest per context.
            var latest: [UInt64: SimulatedFence] = [:]
            for fence in first.fences + second.fences where !fence.isSignalled {
                if let kept = latest[fence.context], kept.seqno >= fence.seqno { continue }
                latest[fence.context] = fence
            }
            let pending = latest.values.sorted { ($0.context, $0.seqno) < ($1.context, $1.seqno) }
            let fences = pending.isEmpty
                ? [SimulatedFence(context: allocateContext(), seqno: 0, driver: "stub", timelineName: "stub", signalled: true)]
                : pending
            return SimulatedSyncFile(
                fences: fences, userName: truncated(name, to: 31), arrayContext: fences.count > 1 ? allocateContext() : 0)
        }
        return try install(.syncFile(merged), label: "sync_file", closeOnExec: true)
    }

    public func syncFileInfo(_ fd: FileDescriptorNumber) throws(KernelError) -> SyncFileInfo {
        record("SYNC_IOC_FILE_INFO")
        guard let sync = try file(fd, "SYNC_IOC_FILE_INFO").syncFile else { throw KernelError("SYNC_IOC_FILE_INFO", .ENOTTY) }
        return locked { SyncFileInfo(name: sync.name, status: sync.status, fences: sync.fences.map(\.info)) }
    }

    public func swSyncCreateFence(timeline: FileDescriptorNumber, value: UInt32, name: String)
        throws(KernelError) -> FileDescriptorNumber
    {
        record("SW_SYNC_IOC_CREATE_FENCE")
        guard let line = try file(timeline, "SW_SYNC_IOC_CREATE_FENCE").timeline else {
            throw KernelError("SW_SYNC_IOC_CREATE_FENCE", .ENOTTY)
        }
        let sync = locked {
            // sync_pt_create: a point at or below the timeline's value is born signalled.
            let fence = SimulatedFence(
                context: line.context, seqno: UInt64(value), driver: "sw_sync", timelineName: line.name,
                signalled: UInt64(value) <= line.value)
            if !fence.isSignalled { line.fences.append(fence) }
            return SimulatedSyncFile(fences: [fence])
        }
        return try install(.syncFile(sync), label: "sync_file", closeOnExec: true)
    }

    public func swSyncIncrement(timeline: FileDescriptorNumber, by count: UInt32) throws(KernelError) {
        record("SW_SYNC_IOC_INC")
        guard let line = try file(timeline, "SW_SYNC_IOC_INC").timeline else { throw KernelError("SW_SYNC_IOC_INC", .ENOTTY) }
        locked { line.advance(by: UInt64(count)) }
        state.broadcast()
    }

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
    func install(_ kind: SimulatedFile.Kind, label: String, closeOnExec: Bool, size: UInt64 = 0)
        throws(KernelError) -> FileDescriptorNumber
    {
        let flags = MemfdFlags.allowSealing | (closeOnExec ? MemfdFlags.closeOnExec : 0)
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

    private func dmaBuf(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedDmaBuf {
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
    private func release(_ buffer: SimulatedDmaBuf) {
        for segment in buffer.segments { try? host.close(segment.memfd) }
        if let charge = buffer.charge { heapUsage[charge.heap, default: 0] -= charge.bytes }
    }
}
