/// A file descriptor number as the kernel hands it out. Ownership lives in `OwnedDescriptor`;
/// this is the plain value the `Kernel` interface speaks in.
public struct FileDescriptorNumber: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }
    public var description: String { "fd \(rawValue)" }
}

/// Everything DmaBufKit asks of the operating system, at the level of single syscalls
/// and ioctls. `LinuxKernel` issues them for real through the C shim; `SimulatedKernel`
/// answers them from a model with the same errno behaviour as Linux 6.1.
///
/// Errors carry the operation and errno; the typed layer above attaches paths.
/// Implementations retry `EINTR` everywhere except `close`.
public protocol Kernel:
    AnyObject, Sendable, FilesInterface, DmaHeapInterface, UdmabufInterface, DmaBufInterface,
    SyncFileInterface, DRMInterface, V4L2Interface, V4L2ConnectorInterface, V4L2CodecInterface
{
    /// "linux" or "simulated": shown in reports so nobody mistakes one for the other.
    var kind: String { get }
    /// Whether devices deliver frames at their own rate (Linux), or as fast as they are taken
    /// (the simulation): a rate measured on an unpaced kernel means nothing.
    var pacesFrames: Bool { get }
    var pageSize: Int { get }
    var physicalMemory: UInt64 { get }
    func kernelRelease() throws(KernelError) -> String
}

/// Well-known paths; each subsystem adds its own.
public enum KernelPaths {}
