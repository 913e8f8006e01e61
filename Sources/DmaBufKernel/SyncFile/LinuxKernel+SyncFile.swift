internal import CDmaBuf

/// sync_file: merge and info; sw_sync timelines (debugfs) for tests.
extension LinuxKernel {
    public func syncFileMerge(
        _ fd: FileDescriptorNumber, _ other: FileDescriptorNumber, name: String
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        try newFD("SYNC_IOC_MERGE") { cdmabuf_sync_merge(fd.rawValue, other.rawValue, name) }
    }

    public func syncFileInfo(_ fd: FileDescriptorNumber) throws(KernelError) -> SyncFileInfo {
        // First pass with no room: the status (dma_fence_get_status) and the fence count.
        // Second pass fetches the fences; a sync_file's fence set never changes.
        var name = [CChar](repeating: 0, count: 32)
        var status: Int32 = 0
        var capacity: UInt32 = 0
        var fences: [cdmabuf_fence_info] = []
        while true {
            var count: UInt32 = 0
            var passStatus: Int32 = 0
            fences = [cdmabuf_fence_info](repeating: cdmabuf_fence_info(), count: Int(capacity))
            _ = try call("SYNC_IOC_FILE_INFO") {
                cdmabuf_sync_file_info(fd.rawValue, &name, &passStatus, &count, &fences, capacity)
            }
            if capacity == 0 { status = passStatus }
            if count <= capacity {
                fences.removeLast(Int(capacity - count))
                break
            }
            capacity = count
        }
        return SyncFileInfo(
            name: Self.string(name), status: status,
            fences: fences.map { fence in
                var fence = fence
                let timeline = withUnsafeBytes(of: &fence.obj_name) { Self.string($0) }
                let driver = withUnsafeBytes(of: &fence.driver_name) { Self.string($0) }
                return FenceInfo(
                    timeline: timeline, driver: driver, status: fence.status,
                    timestampNanoseconds: fence.timestamp_ns)
            })
    }

    public func swSyncCreateFence(
        timeline: FileDescriptorNumber, value: UInt32, name: String
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        try newFD("SW_SYNC_IOC_CREATE_FENCE") { cdmabuf_sw_sync_create_fence(timeline.rawValue, value, name) }
    }

    public func syncFileSetDeadline(_ fd: FileDescriptorNumber, deadlineNanoseconds: UInt64) throws(KernelError) {
        _ = try call("SYNC_IOC_SET_DEADLINE") { cdmabuf_sync_set_deadline(fd.rawValue, deadlineNanoseconds) }
    }

    public func swSyncIncrement(timeline: FileDescriptorNumber, by count: UInt32) throws(KernelError) {
        _ = try call("SW_SYNC_IOC_INC") { cdmabuf_sw_sync_inc(timeline.rawValue, count) }
    }
}
