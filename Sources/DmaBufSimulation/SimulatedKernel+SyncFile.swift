import DmaBufKernel
import Foundation

/// sync_file (drivers/dma-buf/sync_file.c), sw_sync (drivers/dma-buf/sw_sync.c)
extension SimulatedKernel {
    public func syncFileMerge(
        _ fd: FileDescriptorNumber, _ other: FileDescriptorNumber, name: String
    )
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
            let fences =
                pending.isEmpty
                ? [
                    SimulatedFence(
                        context: allocateContext(), seqno: 0, driver: "stub", timelineName: "stub", signalled: true)
                ]
                : pending
            return SimulatedSyncFile(
                fences: fences, userName: truncated(name, to: 31),
                arrayContext: fences.count > 1 ? allocateContext() : 0)
        }
        return try install(.syncFile(merged), label: "sync_file", closeOnExec: true)
    }

    public func syncFileInfo(_ fd: FileDescriptorNumber) throws(KernelError) -> SyncFileInfo {
        record("SYNC_IOC_FILE_INFO")
        guard let sync = try file(fd, "SYNC_IOC_FILE_INFO").syncFile else {
            throw KernelError("SYNC_IOC_FILE_INFO", .ENOTTY)
        }
        return locked { SyncFileInfo(name: sync.name, status: sync.status, fences: sync.fences.map(\.info)) }
    }

    public func syncFileSetDeadline(_ fd: FileDescriptorNumber, deadlineNanoseconds: UInt64) throws(KernelError) {
        let operation = "SYNC_IOC_SET_DEADLINE"
        record(operation)
        // sync_file_ioctl: 6.1 has no such case (ENOTTY, sync_file.c:363); from 6.3 it passes
        // the hint to dma_fence_set_deadline, which the modelled fences (sw_sync, vkms) ignore.
        guard try file(fd, operation).syncFile != nil, version.hasSyncFileDeadline else {
            throw KernelError(operation, .ENOTTY)
        }
    }

    public func swSyncCreateFence(
        timeline: FileDescriptorNumber, value: UInt32, name: String
    )
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
        guard let line = try file(timeline, "SW_SYNC_IOC_INC").timeline else {
            throw KernelError("SW_SYNC_IOC_INC", .ENOTTY)
        }
        locked { line.advance(by: UInt64(count)) }
        state.broadcast()
    }
}
