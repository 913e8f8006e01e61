import DmaBufKernel

/// `/dev/udmabuf`: turns ranges of sealed memfds into a dma-buf without copying.
public struct UdmabufDevice: ~Copyable, Sendable {
    public let descriptor: OwnedDescriptor

    public init(kernel: any Kernel, path: String = KernelPaths.udmabuf) throws(KernelError) {
        do { descriptor = try kernel.openOwned(path, flags: [.readWrite, .closeOnExec]) } catch {
            throw error.explained(deviceOpenAdvice(error, node: path))
        }
    }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    /// The driver's limits (module parameters `size_limit_mb`, `list_limit`), when sysfs shows them.
    public func limits() -> (sizeLimitBytes: UInt64?, listLimit: Int?) {
        let kernel = descriptor.kernel
        let sizeMB = (try? kernel.readFile(KernelPaths.udmabufSizeLimit)).flatMap { UInt64($0.trimmingWhitespace) }
        let list = (try? kernel.readFile(KernelPaths.udmabufListLimit)).flatMap { Int($0.trimmingWhitespace) }
        return (sizeMB.map { $0 << 20 }, list)
    }

    /// A dma-buf over `size` bytes (default: to the end) of `memfd` from `offset` (`UDMABUF_CREATE`).
    public func create(
        from memfd: borrowing Memfd, offset: Int = 0, size: Int? = nil, closeOnExec: Bool = true
    ) throws(KernelError) -> DmaBuf {
        if offset < 0 || offset > memfd.length || (size ?? 0) < 0 {
            throw KernelError(
                "UDMABUF_CREATE", .EINVAL, path: descriptor.path,
                reason:
                    "offset \(offset) and size \(size.map(String.init) ?? "to the end") do not lie within the memfd's \(memfd.length) bytes; no ioctl issued"
            )
        }
        let item = memfd.range(offset: offset, size: size ?? (memfd.length - offset))
        try validate([item], offsets: [offset], operation: "UDMABUF_CREATE")
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            do throws(KernelError) {
                return try kernel.udmabufCreate(
                    device: fd, memfd: item.memfd, flags: closeOnExec ? .closeOnExec : [],
                    offset: item.offset, size: item.size)
            } catch { throw error.explained(explain(error, [item])) }
        }
        return DmaBuf(
            OwnedDescriptor(fd, kernel: descriptor.kernel, madeBy: "udmabuf over", of: memfd.descriptor.path),
            length: Int(item.size))
    }

    /// A dma-buf concatenating several memfd ranges, in order (`UDMABUF_CREATE_LIST`).
    /// Each memfd must stay open until this returns.
    public func create(ranges: [UdmabufItem], closeOnExec: Bool = true) throws(KernelError) -> DmaBuf {
        try validate(ranges, offsets: ranges.map { Int(clamping: $0.offset) }, operation: "UDMABUF_CREATE_LIST")
        let fd = try descriptor.perform { kernel, fd throws(KernelError) in
            do throws(KernelError) {
                return try kernel.udmabufCreateList(
                    device: fd, flags: closeOnExec ? .closeOnExec : [], items: ranges)
            } catch { throw error.explained(explain(error, ranges)) }
        }
        let total = ranges.reduce(0) { $0 + Int($1.size) }
        return DmaBuf(
            OwnedDescriptor(fd, kernel: descriptor.kernel, path: "udmabuf list of \(ranges.count) ranges"),
            length: total)
    }

    private func validate(_ items: [UdmabufItem], offsets: [Int], operation: String) throws(KernelError) {
        let kernel = descriptor.kernel
        if items.isEmpty {
            throw KernelError(operation, .EINVAL, path: descriptor.path, reason: "no ranges given; no ioctl issued")
        }
        for (item, offset) in zip(items, offsets) {
            if offset < 0 || Int64(bitPattern: item.offset) < 0 {
                throw KernelError(
                    operation, .EINVAL, path: descriptor.path, reason: "offset \(offset) is negative; no ioctl issued")
            }
            try validateLength(
                Int(truncatingIfNeeded: item.size), operation: operation, path: descriptor.path, kernel: kernel)
        }
    }

    /// Says which rule of udmabuf a refused request broke, by checking each rule the driver applies.
    private func explain(_ error: KernelError, _ items: [UdmabufItem]) -> String? {
        let kernel = descriptor.kernel
        let page = UInt64(kernel.pageSize)
        let limits = self.limits()
        if error.errno == .EINVAL, let listLimit = limits.listLimit, items.count > listLimit {
            return "\(items.count) ranges exceed the driver's list_limit of \(listLimit)"
        }
        for (index, item) in items.enumerated() {
            let which = items.count > 1 ? "range \(index): " : ""
            if item.offset % page != 0 {
                return "\(which)offset \(item.offset) is not a multiple of the page size (\(page))"
            }
            if item.size % page != 0 { return "\(which)size \(item.size) is not a multiple of the page size (\(page))" }
        }
        let total = items.reduce(UInt64(0)) { $0 &+ $1.size }
        if let limit = limits.sizeLimitBytes, total > limit {
            return "\(total) bytes exceed the driver's size_limit_mb (\(limit >> 20) MiB); raise udmabuf.size_limit_mb"
        }
        for (index, item) in items.enumerated() {
            let which = items.count > 1 ? "range \(index): " : ""
            if error.errno == .EBADFD {
                return "\(which)\(item.memfd) is not a memfd (udmabuf accepts only shmem/memfd or hugetlbfs files)"
            }
            guard let seals = try? kernel.seals(item.memfd) else {
                return "\(which)\(item.memfd) is not a memfd (udmabuf accepts only shmem/memfd or hugetlbfs files)"
            }
            if !seals.contains(.shrink) {
                return
                    "\(which)memfd \(item.memfd) lacks F_SEAL_SHRINK (seals: \(seals)); udmabuf requires it so its pages cannot be truncated away"
            }
            if !seals.isDisjoint(with: [.write, .futureWrite]) {
                return
                    "\(which)memfd \(item.memfd) is write-sealed (seals: \(seals)); udmabuf refuses F_SEAL_WRITE/F_SEAL_FUTURE_WRITE because the dma-buf must stay writable"
            }
        }
        if error.errno == .EINVAL { return "a range reaches past the end of its memfd" }
        return nil
    }
}

extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
