/// `DMA_BUF_SYNC_*` bits for `DMA_BUF_IOCTL_SYNC` and the sync_file export/import ioctls.
public enum DmaBufSyncFlags {
    public static let read: UInt64 = 1 << 0
    public static let write: UInt64 = 2 << 0
    public static let readWrite: UInt64 = read | write
    public static let start: UInt64 = 0 << 2
    public static let end: UInt64 = 1 << 2
    public static let validMask: UInt64 = readWrite | end
}

/// `DMA_BUF_NAME_LEN`: a name holds at most 31 bytes and its terminating NUL.
public let dmaBufNameCapacity = 32

/// dma-buf (drivers/dma-buf/dma-buf.c): the ioctls every dma-buf answers, whoever exported it.
public protocol DmaBufInterface: AnyObject {
    func dmaBufSync(_ fd: FileDescriptorNumber, flags: UInt64) throws(KernelError)
    func dmaBufSetName(_ fd: FileDescriptorNumber, _ name: String) throws(KernelError)
    func dmaBufExportSyncFile(_ fd: FileDescriptorNumber, flags: UInt32) throws(KernelError)
        -> FileDescriptorNumber
    func dmaBufImportSyncFile(
        _ fd: FileDescriptorNumber, flags: UInt32, syncFile: FileDescriptorNumber
    ) throws(KernelError)
}

extension KernelPaths {
    /// Every dma-buf in the system (debugfs, root only).
    public static let dmaBufDebugList = "/sys/kernel/debug/dma_buf/bufinfo"
}
