internal import CDmaBuf

/// udmabuf: `UDMABUF_CREATE` and `UDMABUF_CREATE_LIST` on `/dev/udmabuf`.
extension LinuxKernel {
    public func udmabufCreate(
        device: FileDescriptorNumber, memfd: FileDescriptorNumber, flags: UdmabufFlags, offset: UInt64, size: UInt64
    ) throws(KernelError) -> FileDescriptorNumber {
        try newFD("UDMABUF_CREATE") {
            cdmabuf_udmabuf_create(device.rawValue, UInt32(bitPattern: memfd.rawValue), flags.rawValue, offset, size)
        }
    }

    public func udmabufCreateList(
        device: FileDescriptorNumber, flags: UdmabufFlags, items: [UdmabufItem]
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        let raw = items.map {
            cdmabuf_udmabuf_item(memfd: UInt32(bitPattern: $0.memfd.rawValue), pad: 0, offset: $0.offset, size: $0.size)
        }
        return try newFD("UDMABUF_CREATE_LIST") {
            cdmabuf_udmabuf_create_list(device.rawValue, flags.rawValue, raw, UInt32(raw.count))
        }
    }
}
