import DmaBufKernel
import Foundation

/// dma-buf (drivers/dma-buf/dma-buf.c)
extension SimulatedKernel {
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
}
