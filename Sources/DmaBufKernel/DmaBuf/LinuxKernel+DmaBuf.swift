internal import CDmaBuf

/// dma-buf: CPU access sync, names and the implicit fences as sync_files.
extension LinuxKernel {
    public func dmaBufSync(_ fd: FileDescriptorNumber, flags: DmaBufSyncFlags) throws(KernelError) {
        _ = try call("DMA_BUF_IOCTL_SYNC") { cdmabuf_dma_buf_sync(fd.rawValue, flags.rawValue) }
    }

    public func dmaBufSetName(_ fd: FileDescriptorNumber, _ name: String) throws(KernelError) {
        _ = try call("DMA_BUF_SET_NAME_B") { cdmabuf_dma_buf_set_name(fd.rawValue, name) }
    }

    public func dmaBufExportSyncFile(
        _ fd: FileDescriptorNumber, flags: DmaBufSyncFlags
    ) throws(KernelError)
        -> FileDescriptorNumber
    {
        try newFD("DMA_BUF_IOCTL_EXPORT_SYNC_FILE") {
            cdmabuf_dma_buf_export_sync_file(fd.rawValue, UInt32(truncatingIfNeeded: flags.rawValue))
        }
    }

    public func dmaBufImportSyncFile(
        _ fd: FileDescriptorNumber, flags: DmaBufSyncFlags, syncFile: FileDescriptorNumber
    )
        throws(KernelError)
    {
        _ = try call("DMA_BUF_IOCTL_IMPORT_SYNC_FILE") {
            cdmabuf_dma_buf_import_sync_file(fd.rawValue, UInt32(truncatingIfNeeded: flags.rawValue), syncFile.rawValue)
        }
    }
}
