/// How `Kernel.open` opens a path. The empty set opens read-only.
public struct OpenFlags: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }
    @inlinable public static var writeOnly: OpenFlags { OpenFlags(rawValue: 0o1) }
    @inlinable public static var readWrite: OpenFlags { OpenFlags(rawValue: 0o2) }
    @inlinable public static var nonBlocking: OpenFlags { OpenFlags(rawValue: 0o4000) }
    @inlinable public static var closeOnExec: OpenFlags { OpenFlags(rawValue: 0o2000000) }
    @inlinable public static var readOnly: OpenFlags { [] }
}

public struct MemoryProtection: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }
    @inlinable public static var read: MemoryProtection { MemoryProtection(rawValue: 1) }
    @inlinable public static var write: MemoryProtection { MemoryProtection(rawValue: 2) }
}

public struct PollEvents: OptionSet, Hashable, Sendable {
    public let rawValue: Int16
    @inlinable public init(rawValue: Int16) { self.rawValue = rawValue }
    @inlinable public static var readable: PollEvents { PollEvents(rawValue: 0x001) }
    /// POLLPRI: a V4L2 event is pending (VIDIOC_DQEVENT).
    @inlinable public static var priority: PollEvents { PollEvents(rawValue: 0x002) }
    @inlinable public static var writable: PollEvents { PollEvents(rawValue: 0x004) }
    @inlinable public static var error: PollEvents { PollEvents(rawValue: 0x008) }
    @inlinable public static var hangUp: PollEvents { PollEvents(rawValue: 0x010) }
    @inlinable public static var invalid: PollEvents { PollEvents(rawValue: 0x020) }
}

/// memfd seals (`F_SEAL_*`).
public struct Seals: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }
    @inlinable public static var seal: Seals { Seals(rawValue: 0x1) }
    @inlinable public static var shrink: Seals { Seals(rawValue: 0x2) }
    @inlinable public static var grow: Seals { Seals(rawValue: 0x4) }
    @inlinable public static var write: Seals { Seals(rawValue: 0x8) }
    @inlinable public static var futureWrite: Seals { Seals(rawValue: 0x10) }

    public var description: String {
        let names: [(Seals, String)] = [
            (.seal, "F_SEAL_SEAL"), (.shrink, "F_SEAL_SHRINK"), (.grow, "F_SEAL_GROW"),
            (.write, "F_SEAL_WRITE"), (.futureWrite, "F_SEAL_FUTURE_WRITE"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "none" : set.joined(separator: "|")
    }
}

/// `memfd_create` flags (`MFD_*`).
public struct MemfdFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var closeOnExec: MemfdFlags { MemfdFlags(rawValue: 0x1) }
    @inlinable public static var allowSealing: MemfdFlags { MemfdFlags(rawValue: 0x2) }
}

/// Files and memory: the plain syscalls every other subsystem's objects go through.
public protocol FilesInterface: AnyObject {
    func open(_ path: String, flags: OpenFlags) throws(KernelError) -> FileDescriptorNumber
    func close(_ fd: FileDescriptorNumber) throws(KernelError)
    func duplicate(_ fd: FileDescriptorNumber) throws(KernelError) -> FileDescriptorNumber
    func readFile(_ path: String) throws(KernelError) -> String
    /// Opens `path` write-only, writes `text` and closes it (sysfs/debugfs controls).
    func writeFile(_ path: String, _ text: String) throws(KernelError)
    /// One `read(2)` of at most `maxLength` bytes; [] at end of file.
    func read(_ fd: FileDescriptorNumber, maxLength: Int) throws(KernelError) -> [UInt8]
    func listDirectory(_ path: String) throws(KernelError) -> [String]
    /// The text of `/proc/self/fdinfo/<fd>`.
    func fdinfo(_ fd: FileDescriptorNumber) throws(KernelError) -> String
    /// `F_GETFD` bits (close-on-exec).
    func descriptorFlags(_ fd: FileDescriptorNumber) throws(KernelError) -> Int32

    func mmap(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, shared: Bool,
        offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(KernelError)
    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns the ready events (empty on timeout).
    func poll(
        _ fd: FileDescriptorNumber, events: PollEvents, timeoutMilliseconds: Int32
    )
        throws(KernelError) -> PollEvents
    /// Waits up to `timeoutMilliseconds` (-1: forever) until any of `requests` is ready; the
    /// ready events of each, in order (all empty on timeout). At most 64 descriptors.
    func poll(
        _ requests: [(fd: FileDescriptorNumber, events: PollEvents)], timeoutMilliseconds: Int32
    )
        throws(KernelError) -> [PollEvents]
    func memfdCreate(name: String, flags: MemfdFlags) throws(KernelError) -> FileDescriptorNumber
    func truncate(_ fd: FileDescriptorNumber, length: UInt64) throws(KernelError)
    func addSeals(_ fd: FileDescriptorNumber, _ seals: Seals) throws(KernelError)
    func seals(_ fd: FileDescriptorNumber) throws(KernelError) -> Seals
}

extension KernelPaths {
    /// The `key:\tvalue` lines of any fdinfo text.
    public static func fdinfoFields(_ text: String) -> [Substring: Substring] {
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...].drop { $0 == "\t" || $0 == " " }
        }
        return fields
    }

    public static func fdinfo(_ fd: FileDescriptorNumber) -> String { "/proc/self/fdinfo/\(fd.rawValue)" }
}
