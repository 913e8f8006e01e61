/// A file descriptor number as the kernel hands it out. Ownership lives in `OwnedDescriptor`;
/// this is the plain value the `Kernel` interface speaks in.
public struct FileDescriptorNumber: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public var description: String { "fd \(rawValue)" }
}

/// How `Kernel.open` opens a path. The empty set opens read-only.
public struct OpenFlags: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let writeOnly = OpenFlags(rawValue: 0o1)
    public static let readWrite = OpenFlags(rawValue: 0o2)
    public static let nonBlocking = OpenFlags(rawValue: 0o4000)
    public static let closeOnExec = OpenFlags(rawValue: 0o2000000)
}

public struct MemoryProtection: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let read = MemoryProtection(rawValue: 1)
    public static let write = MemoryProtection(rawValue: 2)
}

public struct PollEvents: OptionSet, Hashable, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: 0x001)
    public static let writable = PollEvents(rawValue: 0x004)
    public static let error = PollEvents(rawValue: 0x008)
    public static let hangUp = PollEvents(rawValue: 0x010)
    public static let invalid = PollEvents(rawValue: 0x020)
}

/// memfd seals (`F_SEAL_*`).
public struct Seals: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let seal = Seals(rawValue: 0x1)
    public static let shrink = Seals(rawValue: 0x2)
    public static let grow = Seals(rawValue: 0x4)
    public static let write = Seals(rawValue: 0x8)
    public static let futureWrite = Seals(rawValue: 0x10)

    public var description: String {
        let names: [(Seals, String)] = [
            (.seal, "F_SEAL_SEAL"), (.shrink, "F_SEAL_SHRINK"), (.grow, "F_SEAL_GROW"),
            (.write, "F_SEAL_WRITE"), (.futureWrite, "F_SEAL_FUTURE_WRITE"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "none" : set.joined(separator: "|")
    }
}

/// `memfd_create` flags.
public enum MemfdFlags {
    public static let closeOnExec: UInt32 = 0x1
    public static let allowSealing: UInt32 = 0x2
}

/// `DMA_BUF_SYNC_*` bits for `DMA_BUF_IOCTL_SYNC` and the sync_file export/import ioctls.
public enum DmaBufSyncFlags {
    public static let read: UInt64 = 1 << 0
    public static let write: UInt64 = 2 << 0
    public static let readWrite: UInt64 = read | write
    public static let start: UInt64 = 0 << 2
    public static let end: UInt64 = 1 << 2
    public static let validMask: UInt64 = readWrite | end
}

/// `UDMABUF_FLAGS_*`.
public enum UdmabufFlags {
    public static let closeOnExec: UInt32 = 0x01
}

/// One range of a `UDMABUF_CREATE_LIST` request.
public struct UdmabufItem: Hashable, Sendable {
    public var memfd: FileDescriptorNumber
    public var offset: UInt64
    public var size: UInt64
    public init(memfd: FileDescriptorNumber, offset: UInt64, size: UInt64) {
        self.memfd = memfd
        self.offset = offset
        self.size = size
    }
}

/// One fence of a sync_file, as `SYNC_IOC_FILE_INFO` reports it.
public struct FenceInfo: Hashable, Sendable {
    /// The timeline's name (`obj_name`).
    public var timeline: String
    public var driver: String
    /// 1 signalled, 0 active, negative errno on error.
    public var status: Int32
    public var timestampNanoseconds: UInt64
    public init(timeline: String, driver: String, status: Int32, timestampNanoseconds: UInt64) {
        self.timeline = timeline
        self.driver = driver
        self.status = status
        self.timestampNanoseconds = timestampNanoseconds
    }
}

/// What `SYNC_IOC_FILE_INFO` reports about a sync_file.
public struct SyncFileInfo: Hashable, Sendable {
    public var name: String
    /// 1 signalled, 0 active, negative errno on error.
    public var status: Int32
    public var fences: [FenceInfo]
    public init(name: String, status: Int32, fences: [FenceInfo]) {
        self.name = name
        self.status = status
        self.fences = fences
    }
}

/// Everything DmaBufKit asks of the operating system, at the level of single syscalls
/// and ioctls. `LinuxKernel` issues them for real through the C shim; `SimulatedKernel`
/// answers them from a model with the same errno behaviour as Linux 6.1.
///
/// Errors carry the operation and errno; the typed layer above attaches paths.
/// Implementations retry `EINTR` everywhere except `close`.
public protocol Kernel: AnyObject, Sendable, DRMInterface, V4L2Interface {
    /// "linux" or "simulated": shown in reports so nobody mistakes one for the other.
    var kind: String { get }
    /// Whether devices deliver frames at their own rate (Linux), or as fast as they are taken
    /// (the simulation): a rate measured on an unpaced kernel means nothing.
    var pacesFrames: Bool { get }
    var pageSize: Int { get }
    var physicalMemory: UInt64 { get }
    func kernelRelease() throws(KernelError) -> String

    // Files
    func open(_ path: String, flags: OpenFlags) throws(KernelError) -> FileDescriptorNumber
    func close(_ fd: FileDescriptorNumber) throws(KernelError)
    func duplicate(_ fd: FileDescriptorNumber) throws(KernelError) -> FileDescriptorNumber
    func readFile(_ path: String) throws(KernelError) -> String
    /// Opens `path` write-only, writes `text` and closes it (sysfs/debugfs controls).
    func writeFile(_ path: String, _ text: String) throws(KernelError)
    /// One `read(2)` of at most `maxLength` bytes; [] at end of file.
    func read(_ fd: FileDescriptorNumber, maxLength: Int) throws(KernelError) -> [UInt8]
    func listDirectory(_ path: String) throws(KernelError) -> [String]
    /// The text of `/proc/self/fdinfo/<fd>`.
    func fdinfo(_ fd: FileDescriptorNumber) throws(KernelError) -> String
    /// `F_GETFD` bits (close-on-exec).
    func descriptorFlags(_ fd: FileDescriptorNumber) throws(KernelError) -> Int32

    // Memory
    func mmap(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, shared: Bool,
        offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(KernelError)
    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns the ready events (empty on timeout).
    func poll(_ fd: FileDescriptorNumber, events: PollEvents, timeoutMilliseconds: Int32)
        throws(KernelError) -> PollEvents
    func memfdCreate(name: String, flags: UInt32) throws(KernelError) -> FileDescriptorNumber
    func truncate(_ fd: FileDescriptorNumber, length: UInt64) throws(KernelError)
    func addSeals(_ fd: FileDescriptorNumber, _ seals: Seals) throws(KernelError)
    func seals(_ fd: FileDescriptorNumber) throws(KernelError) -> Seals

    // dma-heap: DMA_HEAP_IOCTL_ALLOC. `fdField` is the request's out-field on entry (must be 0).
    func dmaHeapAllocate(
        heap: FileDescriptorNumber, length: UInt64, fdFlags: UInt32, heapFlags: UInt64,
        fdField: UInt32
    ) throws(KernelError) -> FileDescriptorNumber

    // udmabuf
    func udmabufCreate(
        device: FileDescriptorNumber, memfd: FileDescriptorNumber, flags: UInt32, offset: UInt64,
        size: UInt64
    ) throws(KernelError) -> FileDescriptorNumber
    func udmabufCreateList(device: FileDescriptorNumber, flags: UInt32, items: [UdmabufItem])
        throws(KernelError) -> FileDescriptorNumber

    // dma-buf
    func dmaBufSync(_ fd: FileDescriptorNumber, flags: UInt64) throws(KernelError)
    func dmaBufSetName(_ fd: FileDescriptorNumber, _ name: String) throws(KernelError)
    func dmaBufExportSyncFile(_ fd: FileDescriptorNumber, flags: UInt32) throws(KernelError)
        -> FileDescriptorNumber
    func dmaBufImportSyncFile(
        _ fd: FileDescriptorNumber, flags: UInt32, syncFile: FileDescriptorNumber
    ) throws(KernelError)

    // sync_file
    func syncFileMerge(_ fd: FileDescriptorNumber, _ other: FileDescriptorNumber, name: String)
        throws(KernelError) -> FileDescriptorNumber
    func syncFileInfo(_ fd: FileDescriptorNumber) throws(KernelError) -> SyncFileInfo

    // sw_sync (debugfs `sync/sw_sync`)
    func swSyncCreateFence(timeline: FileDescriptorNumber, value: UInt32, name: String)
        throws(KernelError) -> FileDescriptorNumber
    func swSyncIncrement(timeline: FileDescriptorNumber, by count: UInt32) throws(KernelError)
}

/// Well-known paths.
public enum KernelPaths {
    public static let dmaHeapDirectory = "/dev/dma_heap"
    public static let udmabuf = "/dev/udmabuf"
    public static let swSync = "/sys/kernel/debug/sync/sw_sync"
    /// Every dma-buf in the system (debugfs, root only).
    public static let dmaBufDebugList = "/sys/kernel/debug/dma_buf/bufinfo"
    public static let udmabufSizeLimit = "/sys/module/udmabuf/parameters/size_limit_mb"
    public static let udmabufListLimit = "/sys/module/udmabuf/parameters/list_limit"
    public static func fdinfo(_ fd: FileDescriptorNumber) -> String { "/proc/self/fdinfo/\(fd.rawValue)" }
}
