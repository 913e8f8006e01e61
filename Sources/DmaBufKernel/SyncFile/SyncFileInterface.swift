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

/// sync_file (drivers/dma-buf/sync_file.c): fences as file descriptors; sw_sync (debugfs)
/// makes timelines a test can signal by hand.
public protocol SyncFileInterface: AnyObject {
    func syncFileMerge(
        _ fd: FileDescriptorNumber, _ other: FileDescriptorNumber, name: String
    )
        throws(KernelError) -> FileDescriptorNumber
    func syncFileInfo(_ fd: FileDescriptorNumber) throws(KernelError) -> SyncFileInfo
    /// `SYNC_IOC_SET_DEADLINE` (Linux 6.3): a hint that the fence is wanted by
    /// `deadlineNanoseconds` (CLOCK_MONOTONIC). ENOTTY on kernels without it.
    func syncFileSetDeadline(_ fd: FileDescriptorNumber, deadlineNanoseconds: UInt64) throws(KernelError)

    // sw_sync (debugfs `sync/sw_sync`)
    func swSyncCreateFence(
        timeline: FileDescriptorNumber, value: UInt32, name: String
    )
        throws(KernelError) -> FileDescriptorNumber
    func swSyncIncrement(timeline: FileDescriptorNumber, by count: UInt32) throws(KernelError)
}

extension KernelPaths {
    public static let swSync = "/sys/kernel/debug/sync/sw_sync"
}
