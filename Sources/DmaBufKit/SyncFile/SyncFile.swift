import DmaBufKernel
import Glibc

/// Where a fence (or a whole sync_file) stands.
public enum FenceStatus: Hashable, Sendable, CustomStringConvertible {
    case active
    case signalled
    case failed(Errno)

    public init(kernelStatus: Int32) {
        self =
            kernelStatus > 0
            ? .signalled : kernelStatus == 0 ? .active : .failed(Errno(rawValue: Int32(clamping: -Int64(kernelStatus))))
    }

    public var description: String {
        switch self {
        case .active: "active"
        case .signalled: "signalled"
        case .failed(let errno): "error \(errno.name)"
        }
    }
}

/// A sync_file: a file descriptor for one or more fences. It becomes readable
/// (`POLLIN`) once every fence has signalled.
public struct SyncFile: ~Copyable, Sendable {
    public let descriptor: OwnedDescriptor

    public init(_ descriptor: consuming OwnedDescriptor) { self.descriptor = descriptor }

    public var fd: FileDescriptorNumber { descriptor.fd }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    /// Name, overall status and fences (`SYNC_IOC_FILE_INFO`).
    public func info() throws(KernelError) -> SyncFileInfo {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.syncFileInfo(fd) }
    }

    public func status() throws(KernelError) -> FenceStatus {
        FenceStatus(kernelStatus: try info().status)
    }

    /// Tells the fences' drivers the result is wanted `delay` from now (`SYNC_IOC_SET_DEADLINE`,
    /// Linux 6.3; CLOCK_MONOTONIC, the vblank clock): a hint a driver may boost its clock for,
    /// never a wait. ENOTTY on kernels without it.
    public func setDeadline(after delay: Duration) throws(KernelError) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = delay.components
        let deadline =
            UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) + UInt64(max(0, seconds)) * 1_000_000_000
            + UInt64(max(0, attoseconds) / 1_000_000_000)
        try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.syncFileSetDeadline(fd, deadlineNanoseconds: deadline)
        }
    }

    /// Waits until every fence signalled (true) or the timeout passed (false).
    public func wait(timeout: Duration) throws(KernelError) -> Bool {
        let ready = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.poll(fd, events: .readable, timeoutMilliseconds: timeout.pollMilliseconds)
        }
        return ready.contains(.readable)
    }

    /// A new sync_file that signals when both this one and `other` have (`SYNC_IOC_MERGE`).
    public func merged(with other: borrowing SyncFile, name: String = "merged") throws(KernelError) -> SyncFile {
        let otherFD = other.fd
        let path = descriptor.path
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.syncFileMerge(fd, otherFD, name: name)
        }
        return SyncFile(OwnedDescriptor(fd, kernel: descriptor.kernel, path: "sync_file merged from \(path)"))
    }
}

/// A software fence timeline from debugfs `sync/sw_sync` (CONFIG_SW_SYNC), for tests:
/// fences on it signal when the test advances it. Closing it fails pending fences with ENOENT.
public struct SoftwareTimeline: ~Copyable {
    public let descriptor: OwnedDescriptor

    public init(kernel: any Kernel, path: String = KernelPaths.swSync) throws(KernelError) {
        descriptor = try kernel.openOwned(path, flags: [.readWrite, .closeOnExec])
    }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    /// A sync_file whose fence signals when the timeline reaches `value`.
    public func fence(at value: UInt32, name: String = "fence") throws(KernelError) -> SyncFile {
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.swSyncCreateFence(timeline: fd, value: value, name: name)
        }
        return SyncFile(OwnedDescriptor(fd, kernel: descriptor.kernel, path: "sw_sync fence @\(value)"))
    }

    /// Moves the timeline forward, signalling every fence at or below the new value.
    public func advance(by count: UInt32 = 1) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.swSyncIncrement(timeline: fd, by: count) }
    }
}
