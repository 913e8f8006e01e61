import DmaBufKernel

#if canImport(Glibc)
    import Glibc
#endif

/// The kernel objects the simulation keeps behind its file descriptors. Every one is backed
/// by a real host file descriptor (a memfd), so fds, `close` and `mmap` behave for real.
final class SimulatedFile {
    enum Kind {
        case heap(name: String)
        case udmabufDevice
        case dmaBuf(SimulatedDmaBuf)
        case syncFile(SimulatedSyncFile)
        case timeline(SimulatedTimeline)
        case drm(SimulatedDRMFile)
        case video(SimulatedVideoFile)
    }

    let kind: Kind
    /// Open descriptors and mappings referring to this file (the kernel's file_count).
    var references = 1
    /// The inode of the backing host file, which fdinfo and bufinfo show.
    let inode: UInt64

    init(_ kind: Kind, inode: UInt64) {
        self.kind = kind
        self.inode = inode
    }

    var dmaBuf: SimulatedDmaBuf? { if case .dmaBuf(let buffer) = kind { buffer } else { nil } }
    var syncFile: SimulatedSyncFile? { if case .syncFile(let file) = kind { file } else { nil } }
    var timeline: SimulatedTimeline? { if case .timeline(let timeline) = kind { timeline } else { nil } }
    var drm: SimulatedDRMFile? { if case .drm(let drm) = kind { drm } else { nil } }
    var video: SimulatedVideoFile? { if case .video(let video) = kind { video } else { nil } }
}

/// One contiguous piece of a udmabuf: pages of a memfd the buffer pins (here: holds a dup of).
struct SimulatedSegment {
    var memfd: FileDescriptorNumber
    var offset: UInt64
    var size: UInt64
}

final class SimulatedDmaBuf {
    let exporter: String
    let size: UInt64
    var name: String?
    /// False when allocated without write access (heap `fd_flags` O_RDONLY).
    let writable: Bool
    /// CMA and udmabuf refuse private mappings; the system heap maps page by page, which
    /// a private (copy-on-write) mapping only allows for a single page.
    let mmapRule: MmapRule
    /// udmabuf only: the memfd ranges whose pages make up the buffer.
    let segments: [SimulatedSegment]
    /// Bytes charged to a heap's capacity, returned on release.
    let charge: (heap: String, bytes: UInt64)?
    /// How many bytes from the start are physically contiguous: what a vb2-dma-contig
    /// importer's `vb2_dc_get_contiguous_size` finds (the model never places two pieces side
    /// by side, though a real allocator sometimes does).
    let contiguousBytes: UInt64
    /// The reservation object: fences with their usage.
    var fences: [(fence: SimulatedFence, usage: FenceUsage)] = []

    enum MmapRule { case sharedOnly, privateSinglePageOnly }

    init(
        exporter: String, size: UInt64, contiguousBytes: UInt64, writable: Bool, mmapRule: MmapRule,
        segments: [SimulatedSegment] = [], charge: (heap: String, bytes: UInt64)? = nil
    ) {
        self.exporter = exporter
        self.contiguousBytes = contiguousBytes
        self.size = size
        self.writable = writable
        self.mmapRule = mmapRule
        self.segments = segments
        self.charge = charge
    }

    /// Fences an access must wait for, as `dma_resv_usage_rw` picks them: a writer waits
    /// for everyone, a reader only for writers. Signalled fences are skipped, as the kernel does.
    func pendingFences(forWrite write: Bool) -> [SimulatedFence] {
        fences.filter { !$0.fence.isSignalled && (write || $0.usage == .write) }.map(\.fence)
    }

    /// `dma_resv_add_fence`: a later fence of the same context replaces an earlier one.
    func add(_ fence: SimulatedFence, usage: FenceUsage) {
        if let index = fences.firstIndex(where: {
            $0.fence.isSignalled || ($0.fence.context == fence.context && $0.usage.rawValue >= usage.rawValue)
        }) {
            fences[index] = (fence, usage)
        } else {
            fences.append((fence, usage))
        }
    }
}

/// `enum dma_resv_usage`, in the kernel's order.
enum FenceUsage: Int { case write = 1, read = 2 }

final class SimulatedFence {
    let context: UInt64
    let seqno: UInt64
    let driver: String
    let timelineName: String
    private(set) var error: Errno?
    private(set) var signalledAt: UInt64?

    init(context: UInt64, seqno: UInt64, driver: String, timelineName: String, signalled: Bool = false) {
        self.context = context
        self.seqno = seqno
        self.driver = driver
        self.timelineName = timelineName
        if signalled { signalledAt = monotonicNanoseconds() }
    }

    var isSignalled: Bool { signalledAt != nil }

    /// `dma_fence_get_status`: 1 signalled, 0 active, -errno when signalled with an error.
    var status: Int32 {
        guard isSignalled else { return 0 }
        return error.map { -$0.rawValue } ?? 1
    }

    func signal(error: Errno? = nil) {
        guard !isSignalled else { return }
        self.error = error
        signalledAt = monotonicNanoseconds()
    }

    var info: FenceInfo {
        FenceInfo(timeline: timelineName, driver: driver, status: status, timestampNanoseconds: signalledAt ?? 0)
    }
}

final class SimulatedSyncFile {
    /// The unwrapped fences (a dma_fence_array is modelled by its members).
    let fences: [SimulatedFence]
    let userName: String?
    /// Context and seqno of the container fence when there is more than one member.
    let arrayContext: UInt64

    init(fences: [SimulatedFence], userName: String? = nil, arrayContext: UInt64 = 0) {
        self.fences = fences
        self.userName = userName
        self.arrayContext = arrayContext
    }

    var isSignalled: Bool { fences.allSatisfy(\.isSignalled) }

    /// `dma_fence_get_status` of the sync_file's fence (an array signals when all members have).
    var status: Int32 {
        guard isSignalled else { return 0 }
        return fences.first { $0.status < 0 }?.status ?? 1
    }

    /// `sync_file_get_name`: the merge name, or "driver-timeline<context>-<seqno>".
    var name: String {
        if let userName, !userName.isEmpty { return userName }
        if fences.count == 1, let fence = fences.first {
            return truncated("\(fence.driver)-\(fence.timelineName)\(fence.context)-\(fence.seqno)", to: 31)
        }
        return truncated("dma_fence_array-unbound\(arrayContext)-1", to: 31)
    }
}

final class SimulatedTimeline {
    let context: UInt64
    let name: String
    var value: UInt64 = 0
    var fences: [SimulatedFence] = []

    init(context: UInt64, name: String) {
        self.context = context
        self.name = name
    }

    /// `sync_timeline_signal`: advance and signal every fence at or below the new value.
    func advance(by count: UInt64) {
        value += count
        for fence in fences where fence.seqno <= value { fence.signal() }
        fences.removeAll { $0.isSignalled }
    }

    /// `sw_sync_debugfs_release`: pending fences fail with ENOENT.
    func release() {
        for fence in fences { fence.signal(error: .ENOENT) }
        fences.removeAll()
    }
}

func truncated(_ text: String, to bytes: Int) -> String {
    var utf8 = Array(text.utf8)
    if utf8.count > bytes { utf8.removeLast(utf8.count - bytes) }
    return String(decoding: utf8, as: UTF8.self)
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
