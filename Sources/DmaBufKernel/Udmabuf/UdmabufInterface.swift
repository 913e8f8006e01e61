/// `UDMABUF_FLAGS_*`.
public struct UdmabufFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var closeOnExec: UdmabufFlags { UdmabufFlags(rawValue: 0x01) }
}

/// One range of a `UDMABUF_CREATE_LIST` request.
public struct UdmabufItem: Hashable, Sendable {
    public var memfd: FileDescriptorNumber
    public var offset: UInt64
    public var size: UInt64
    public init(memfd: FileDescriptorNumber, offset: UInt64, size: UInt64) {
        self.memfd = memfd
        self.offset = offset
        self.size = size
    }
}

/// udmabuf (drivers/dma-buf/udmabuf.c): turns pages of a sealed memfd into a dma-buf.
public protocol UdmabufInterface: AnyObject {
    func udmabufCreate(
        device: FileDescriptorNumber, memfd: FileDescriptorNumber, flags: UdmabufFlags, offset: UInt64,
        size: UInt64
    ) throws(KernelError) -> FileDescriptorNumber
    func udmabufCreateList(
        device: FileDescriptorNumber, flags: UdmabufFlags, items: [UdmabufItem]
    )
        throws(KernelError) -> FileDescriptorNumber
}

extension KernelPaths {
    public static let udmabuf = "/dev/udmabuf"
    public static let udmabufSizeLimit = "/sys/module/udmabuf/parameters/size_limit_mb"
    public static let udmabufListLimit = "/sys/module/udmabuf/parameters/list_limit"
}
