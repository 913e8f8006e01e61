import DmaBufKernel
import Foundation

/// udmabuf (drivers/dma-buf/udmabuf.c)
extension SimulatedKernel {
    public func udmabufCreate(
        device: FileDescriptorNumber, memfd: FileDescriptorNumber, flags: UdmabufFlags, offset: UInt64, size: UInt64
    ) throws(KernelError) -> FileDescriptorNumber {
        record("UDMABUF_CREATE")
        return try createUdmabuf(
            "UDMABUF_CREATE", device: device, flags: flags,
            items: [UdmabufItem(memfd: memfd, offset: offset, size: size)])
    }

    public func udmabufCreateList(
        device: FileDescriptorNumber, flags: UdmabufFlags, items: [UdmabufItem]
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        let operation = "UDMABUF_CREATE_LIST"
        record(operation)
        guard case .udmabufDevice = try file(device, operation).kind else { throw KernelError(operation, .ENOTTY) }
        // udmabuf_ioctl_create_list: the count is checked before the items are read.
        if items.count > configuration.udmabufListLimit { throw KernelError(operation, .EINVAL) }
        return try createUdmabuf(operation, device: device, flags: flags, items: items)
    }

    private func createUdmabuf(
        _ operation: String, device: FileDescriptorNumber, flags: UdmabufFlags, items: [UdmabufItem]
    )
        throws(KernelError) -> FileDescriptorNumber
    {
        guard case .udmabufDevice = try file(device, operation).kind else { throw KernelError(operation, .ENOTTY) }
        let page = UInt64(pageSize)
        let pageLimit = (configuration.udmabufSizeLimitMB << 20) / page
        var pageCount: UInt64 = 0
        // udmabuf_create, first pass: alignment and the size limit, for every item.
        for item in items {
            if item.offset % page != 0 || item.size % page != 0 { throw KernelError(operation, .EINVAL) }
            pageCount += item.size / page
            if pageCount > pageLimit { throw KernelError(operation, .EINVAL) }
        }
        if pageCount == 0 { throw KernelError(operation, .EINVAL) }
        // Second pass: each memfd must be shmem, sealed against shrinking and not against writing.
        var segments: [SimulatedSegment] = []
        func undo() { for segment in segments { try? host.close(segment.memfd) } }
        for item in items {
            let isSimulatedObject = locked { files[item.memfd.rawValue] != nil }
            guard !isSimulatedObject, let seals = try? host.seals(item.memfd) else {
                undo()
                throw KernelError(operation, .EBADFD)
            }
            if !seals.contains(.shrink) || !seals.isDisjoint(with: [.write, .futureWrite]) {
                undo()
                throw KernelError(operation, .EINVAL)
            }
            // shmem_read_mapping_page: a page at or past i_size is -EINVAL (so is a range that wraps).
            var status = stat()
            let (end, wraps) = item.offset.addingReportingOverflow(item.size)
            guard fstat(item.memfd.rawValue, &status) == 0, !wraps,
                item.size == 0 || end - page < UInt64(status.st_size)
            else {
                undo()
                throw KernelError(operation, .EINVAL)
            }
            do {
                segments.append(
                    SimulatedSegment(memfd: try host.duplicate(item.memfd), offset: item.offset, size: item.size))
            } catch {
                undo()
                throw KernelError(operation, error.errno)
            }
        }
        let buffer = SimulatedDmaBuf(
            exporter: "udmabuf", size: pageCount * page, contiguousBytes: page, writable: true, mmapRule: .sharedOnly,
            segments: segments)
        do {
            return try install(.dmaBuf(buffer), label: "udmabuf", closeOnExec: flags.contains(.closeOnExec))
        } catch {
            undo()
            throw error
        }
    }
}
