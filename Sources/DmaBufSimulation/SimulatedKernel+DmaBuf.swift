import DmaBufKernel
import Foundation

/// dma-buf (drivers/dma-buf/dma-buf.c)
extension SimulatedKernel {
    public func dmaBufSync(_ fd: FileDescriptorNumber, flags: DmaBufSyncFlags) throws(KernelError) {
        record("DMA_BUF_IOCTL_SYNC " + syncDescription(flags))
        let buffer = try dmaBuf(fd, "DMA_BUF_IOCTL_SYNC")
        if !flags.subtracting(.valid).isEmpty || flags.isDisjoint(with: .readWrite) {
            throw KernelError("DMA_BUF_IOCTL_SYNC", .EINVAL)
        }
        guard !flags.contains(.end) else { return }
        // __dma_buf_begin_cpu_access waits for the implicit fences.
        let write = flags.contains(.write)
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

    public func dmaBufExportSyncFile(
        _ fd: FileDescriptorNumber, flags: DmaBufSyncFlags
    ) throws(KernelError) -> FileDescriptorNumber {
        let operation = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE"
        record(operation)
        let buffer = try dmaBuf(fd, operation)
        try checkSyncFileFlags(flags, operation)
        let sync = locked {
            let fences = buffer.pendingFences(forWrite: flags.contains(.write))
            return SimulatedSyncFile(
                fences: fences.isEmpty ? [stubFence] : fences, arrayContext: fences.count > 1 ? allocateContext() : 0)
        }
        return try install(.syncFile(sync), label: "sync_file", closeOnExec: true)
    }

    public func dmaBufImportSyncFile(
        _ fd: FileDescriptorNumber, flags: DmaBufSyncFlags, syncFile: FileDescriptorNumber
    )
        throws(KernelError)
    {
        let operation = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE"
        record(operation)
        let buffer = try dmaBuf(fd, operation)
        try checkSyncFileFlags(flags, operation)
        guard let sync = locked({ files[syncFile.rawValue]?.syncFile }) else { throw KernelError(operation, .EINVAL) }
        let usage: FenceUsage = flags.contains(.write) ? .write : .read
        locked { for fence in sync.fences { buffer.add(fence, usage: usage) } }
    }

    private func syncDescription(_ flags: DmaBufSyncFlags) -> String {
        var parts = [flags.contains(.end) ? "END" : "START"]
        if flags.contains(.read) { parts.append("READ") }
        if flags.contains(.write) { parts.append("WRITE") }
        return parts.joined(separator: "|")
    }

    private func checkSyncFileFlags(_ flags: DmaBufSyncFlags, _ operation: String) throws(KernelError) {
        // The request's field is a __u32: higher bits never reach the driver.
        let field = DmaBufSyncFlags(rawValue: flags.rawValue & UInt64(UInt32.max))
        if !field.subtracting(.readWrite).isEmpty || field.isDisjoint(with: .readWrite) {
            throw KernelError(operation, .EINVAL)
        }
    }
}
