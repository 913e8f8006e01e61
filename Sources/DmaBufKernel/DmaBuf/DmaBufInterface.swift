/// `DMA_BUF_SYNC_*` bits for `DMA_BUF_IOCTL_SYNC` and the sync_file export/import ioctls.
/// The export/import ioctls take only the access bits, in 32 bits.
public struct DmaBufSyncFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable public static var read: DmaBufSyncFlags { DmaBufSyncFlags(rawValue: 1 << 0) }
    @inlinable public static var write: DmaBufSyncFlags { DmaBufSyncFlags(rawValue: 2 << 0) }
    @inlinable public static var readWrite: DmaBufSyncFlags { [read, write] }
    /// `DMA_BUF_SYNC_START` is 0: the absence of `end`.
    @inlinable public static var start: DmaBufSyncFlags { [] }
    @inlinable public static var end: DmaBufSyncFlags { DmaBufSyncFlags(rawValue: 1 << 2) }
    @inlinable public static var valid: DmaBufSyncFlags { [readWrite, end] }
}

/// `DMA_BUF_NAME_LEN`: a name holds at most 31 bytes and its terminating NUL.
public let dmaBufNameCapacity = 32

/// dma-buf (drivers/dma-buf/dma-buf.c): the ioctls every dma-buf answers, whoever exported it.
public protocol DmaBufInterface: AnyObject {
    func dmaBufSync(_ fd: FileDescriptorNumber, flags: DmaBufSyncFlags) throws(KernelError)
    func dmaBufSetName(_ fd: FileDescriptorNumber, _ name: String) throws(KernelError)
    func dmaBufExportSyncFile(
        _ fd: FileDescriptorNumber, flags: DmaBufSyncFlags
    ) throws(KernelError)
        -> FileDescriptorNumber
    func dmaBufImportSyncFile(
        _ fd: FileDescriptorNumber, flags: DmaBufSyncFlags, syncFile: FileDescriptorNumber
    ) throws(KernelError)
}

extension KernelPaths {
    /// Every dma-buf in the system (debugfs, root only).
    public static let dmaBufDebugList = "/sys/kernel/debug/dma_buf/bufinfo"
}
