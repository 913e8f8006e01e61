import DmaBufKit
import Foundation

/// Bad inputs and the errno Linux 6.1 and 6.12 answer each with. One table, run against the simulated
/// kernel here and against the real one in the VM: both must agree row for row.
///
/// Rows call the `Kernel` interface directly, so the kernel (not our typed layer) answers.
/// A row returns the descriptor its call produced, if it wrongly succeeded, so it can be closed.
struct BadInput: Sendable, CustomStringConvertible {
    let name: String
    let expected: Errno
    /// The 6.1 source line that gives this answer, and the 6.12 one where it changed.
    let source: String
    var linux6_12: String? = nil
    let run: @Sendable (BadInputFixture) throws(KernelError) -> FileDescriptorNumber?

    var description: String { name }
    /// Both kernels' lines, where they differ.
    var citation: String { linux6_12.map { "6.1 \(source); 6.12 \($0)" } ?? source }
}

/// The resources rows need, opened fresh for each row and closed after it.
final class BadInputFixture {
    let kernel: any Kernel
    let page: UInt64
    private var opened: [FileDescriptorNumber] = []
    private var mapped: [(UnsafeMutableRawPointer, Int)] = []

    init(kernel: any Kernel) {
        self.kernel = kernel
        page = UInt64(kernel.pageSize)
    }

    func own(_ fd: FileDescriptorNumber) -> FileDescriptorNumber {
        opened.append(fd)
        return fd
    }

    func heap(_ name: String = "system") throws(KernelError) -> FileDescriptorNumber {
        own(try kernel.open(DmaHeap.path(of: name), flags: [.closeOnExec]))
    }

    func udmabuf() throws(KernelError) -> FileDescriptorNumber {
        own(try kernel.open(KernelPaths.udmabuf, flags: [.readWrite, .closeOnExec]))
    }

    /// A dma-buf of `pages` pages from the system heap.
    func dmaBuf(
        pages: UInt64 = 1, heap name: String = "system", fdFlags: Int32 = 0o2000002
    ) throws(KernelError) -> FileDescriptorNumber {
        own(
            try kernel.dmaHeapAllocate(
                heap: try heap(name), length: pages * page, fdFlags: UInt32(fdFlags), heapFlags: 0, fdField: 0))
    }

    /// A memfd of `pages` pages with `seals` added (sealing allowed unless `allowSealing` is false).
    func memfd(
        pages: UInt64 = 4, seals: Seals = [.shrink], allowSealing: Bool = true
    ) throws(KernelError) -> FileDescriptorNumber {
        let fd = own(
            try kernel.memfdCreate(
                name: "bad-input", flags: allowSealing ? [.closeOnExec, .allowSealing] : .closeOnExec))
        try kernel.truncate(fd, length: pages * page)
        if !seals.isEmpty { try kernel.addSeals(fd, seals) }
        return fd
    }

    func syncFile() throws(KernelError) -> FileDescriptorNumber {
        own(try kernel.dmaBufExportSyncFile(try dmaBuf(), flags: .read))
    }

    func map(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, shared: Bool = true, offset: UInt64 = 0
    )
        throws(KernelError)
    {
        let address = try kernel.mmap(fd, length: length, protection: protection, shared: shared, offset: offset)
        mapped.append((address, length))
    }

    var udmabufSizeLimit: UInt64 {
        ((try? kernel.readFile(KernelPaths.udmabufSizeLimit)).flatMap { UInt64($0.filter(\.isNumber)) } ?? 64) << 20
    }

    var udmabufListLimit: Int {
        (try? kernel.readFile(KernelPaths.udmabufListLimit)).flatMap { Int($0.filter(\.isNumber)) } ?? 1024
    }

    func closeAll() {
        for (address, length) in mapped { try? kernel.munmap(address, length: length) }
        for fd in opened.reversed() { try? kernel.close(fd) }
        mapped = []
        opened = []
    }
}

enum BadInputTable {
    static let rows: [BadInput] = heap + udmabuf + dmaBuf + syncFile

    static let heap: [BadInput] = [
        BadInput(
            name: "heap: unknown heap flags", expected: .EINVAL,
            source: "dma-heap.c: heap_flags & ~DMA_HEAP_VALID_HEAP_FLAGS"
        ) { f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(
                heap: try f.heap(), length: f.page, fdFlags: 0o2000002, heapFlags: 1, fdField: 0)
        },
        BadInput(
            name: "heap: fd flags beyond O_CLOEXEC|O_ACCMODE", expected: .EINVAL,
            source: "dma-heap.c: fd_flags & ~DMA_HEAP_VALID_FD_FLAGS"
        ) { f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(
                heap: try f.heap(), length: f.page, fdFlags: 0o2004002, heapFlags: 0, fdField: 0)
        },
        BadInput(name: "heap: non-zero fd field", expected: .EINVAL, source: "dma-heap.c: if (heap_allocation->fd)") {
            f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(
                heap: try f.heap(), length: f.page, fdFlags: 0o2000002, heapFlags: 0, fdField: 3)
        },
        BadInput(name: "heap: zero length", expected: .EINVAL, source: "dma-heap.c: len = PAGE_ALIGN(len); if (!len)") {
            f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(heap: try f.heap(), length: 0, fdFlags: 0o2000002, heapFlags: 0, fdField: 0)
        },
        BadInput(
            name: "heap: length that wraps when page-aligned", expected: .EINVAL,
            source: "dma-heap.c: PAGE_ALIGN(~0) == 0"
        ) { f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(heap: try f.heap(), length: .max, fdFlags: 0o2000002, heapFlags: 0, fdField: 0)
        },
        BadInput(name: "heap: CMA request beyond its area", expected: .ENOMEM, source: "cma_heap.c: cma_alloc fails") {
            f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(
                heap: try f.heap("reserved"), length: 1 << 30, fdFlags: 0o2000002, heapFlags: 0, fdField: 0)
        },
        BadInput(name: "heap: alloc ioctl on a dma-buf", expected: .ENOTTY, source: "dma-buf.c: dma_buf_ioctl default")
        { f throws(KernelError) in
            try f.kernel.dmaHeapAllocate(
                heap: try f.dmaBuf(), length: f.page, fdFlags: 0o2000002, heapFlags: 0, fdField: 0)
        },
    ]

    static let udmabuf: [BadInput] = [
        BadInput(
            name: "udmabuf: fd is not a memfd", expected: .EBADFD, source: "udmabuf.c: !shmem_mapping(mapping)",
            linux6_12: "udmabuf.c check_memfd_seals: !shmem_file && !is_file_hugepages"
        ) {
            f throws(KernelError) in
            let device = try f.udmabuf()
            return try f.kernel.udmabufCreate(
                device: device, memfd: device, flags: UdmabufFlags.closeOnExec, offset: 0, size: f.page)
        },
        BadInput(
            name: "udmabuf: fd is a dma-buf", expected: .EBADFD, source: "udmabuf.c: !shmem_mapping(mapping)",
            linux6_12: "udmabuf.c check_memfd_seals: !shmem_file && !is_file_hugepages"
        ) {
            f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.dmaBuf(), flags: [], offset: 0, size: f.page)
        },
        BadInput(name: "udmabuf: fd is not open", expected: .EBADFD, source: "udmabuf.c: fget() == NULL") {
            f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: FileDescriptorNumber(rawValue: -1), flags: [], offset: 0, size: f.page)
        },
        BadInput(name: "udmabuf: memfd without F_SEAL_SHRINK", expected: .EINVAL, source: "udmabuf.c: SEALS_WANTED") {
            f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(seals: []), flags: [], offset: 0, size: f.page)
        },
        BadInput(
            name: "udmabuf: memfd that does not allow sealing", expected: .EINVAL,
            source: "udmabuf.c: SEALS_WANTED (seals = F_SEAL_SEAL)"
        ) { f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(seals: [], allowSealing: false), flags: [], offset: 0,
                size: f.page)
        },
        BadInput(name: "udmabuf: write-sealed memfd", expected: .EINVAL, source: "udmabuf.c: SEALS_DENIED F_SEAL_WRITE")
        { f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(seals: [.shrink, .write]), flags: [], offset: 0,
                size: f.page)
        },
        BadInput(
            name: "udmabuf: future-write-sealed memfd", expected: .EINVAL,
            source: "udmabuf.c: SEALS_DENIED F_SEAL_FUTURE_WRITE"
        ) { f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(seals: [.shrink, .futureWrite]), flags: [], offset: 0,
                size: f.page)
        },
        BadInput(
            name: "udmabuf: unaligned offset", expected: .EINVAL, source: "udmabuf.c: !IS_ALIGNED(offset, PAGE_SIZE)",
            linux6_12: "udmabuf.c: !PAGE_ALIGNED(list[i].offset)"
        ) { f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(), flags: [], offset: 100, size: f.page)
        },
        BadInput(
            name: "udmabuf: unaligned size", expected: .EINVAL, source: "udmabuf.c: !IS_ALIGNED(size, PAGE_SIZE)",
            linux6_12: "udmabuf.c: !PAGE_ALIGNED(list[i].size)"
        ) { f throws(KernelError) in
            try f.kernel.udmabufCreate(device: try f.udmabuf(), memfd: try f.memfd(), flags: [], offset: 0, size: 100)
        },
        BadInput(
            name: "udmabuf: zero size", expected: .EINVAL, source: "udmabuf.c: if (!ubuf->pagecount)",
            linux6_12: "udmabuf.c: if (!pgcnt)"
        ) {
            f throws(KernelError) in
            try f.kernel.udmabufCreate(device: try f.udmabuf(), memfd: try f.memfd(), flags: [], offset: 0, size: 0)
        },
        BadInput(
            name: "udmabuf: over size_limit_mb", expected: .EINVAL, source: "udmabuf.c: pagecount > pglimit",
            linux6_12: "udmabuf.c: pgcnt > pglimit"
        ) {
            f throws(KernelError) in
            let size = f.udmabufSizeLimit + f.page
            return try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(pages: size / f.page), flags: [], offset: 0, size: size)
        },
        BadInput(
            name: "udmabuf: range past the end of the memfd", expected: .EINVAL,
            source: "shmem_get_folio_gfp: index >= i_size",
            linux6_12: "udmabuf_pin_folios: memfd_pin_folios finds no folio past i_size"
        ) { f throws(KernelError) in
            try f.kernel.udmabufCreate(
                device: try f.udmabuf(), memfd: try f.memfd(pages: 4), flags: [], offset: 4 * f.page, size: f.page)
        },
        BadInput(name: "udmabuf list: over list_limit", expected: .EINVAL, source: "udmabuf.c: head.count > list_limit")
        { f throws(KernelError) in
            let memfd = try f.memfd(pages: 1)
            let items = Array(
                repeating: UdmabufItem(memfd: memfd, offset: 0, size: f.page), count: f.udmabufListLimit + 1)
            return try f.kernel.udmabufCreateList(device: try f.udmabuf(), flags: [], items: items)
        },
        BadInput(
            name: "udmabuf list: empty", expected: .EINVAL, source: "udmabuf.c: if (!ubuf->pagecount)",
            linux6_12: "udmabuf.c: if (!pgcnt)"
        ) {
            f throws(KernelError) in
            try f.kernel.udmabufCreateList(device: try f.udmabuf(), flags: [], items: [])
        },
        BadInput(
            name: "udmabuf list: second range unsealed", expected: .EINVAL,
            source: "udmabuf.c: SEALS_WANTED, after pinning range 1",
            linux6_12: "udmabuf.c check_memfd_seals: SEALS_WANTED, after pinning range 1"
        ) { f throws(KernelError) in
            let items = [
                UdmabufItem(memfd: try f.memfd(), offset: 0, size: f.page),
                UdmabufItem(memfd: try f.memfd(seals: []), offset: 0, size: f.page),
            ]
            return try f.kernel.udmabufCreateList(device: try f.udmabuf(), flags: [], items: items)
        },
    ]

    static let dmaBuf: [BadInput] = [
        BadInput(
            name: "sync: no direction", expected: .EINVAL, source: "dma-buf.c: switch (flags & DMA_BUF_SYNC_RW) default"
        ) { f throws(KernelError) in
            try f.kernel.dmaBufSync(try f.dmaBuf(), flags: DmaBufSyncFlags.start)
            return nil
        },
        BadInput(
            name: "sync: unknown flag", expected: .EINVAL, source: "dma-buf.c: flags & ~DMA_BUF_SYNC_VALID_FLAGS_MASK"
        ) { f throws(KernelError) in
            try f.kernel.dmaBufSync(
                try f.dmaBuf(), flags: DmaBufSyncFlags(rawValue: DmaBufSyncFlags.readWrite.rawValue | 0x8))
            return nil
        },
        BadInput(name: "sync: on a memfd", expected: .ENOTTY, source: "vfs_ioctl: no unlocked_ioctl") {
            f throws(KernelError) in
            try f.kernel.dmaBufSync(try f.memfd(), flags: DmaBufSyncFlags.read)
            return nil
        },
        BadInput(name: "sync: on a closed fd", expected: .EBADF, source: "ioctl(2): fd not open") {
            f throws(KernelError) in
            try f.kernel.dmaBufSync(FileDescriptorNumber(rawValue: -1), flags: DmaBufSyncFlags.read)
            return nil
        },
        BadInput(name: "set name: 32 bytes", expected: .EINVAL, source: "strndup_user(buf, DMA_BUF_NAME_LEN)") {
            f throws(KernelError) in
            try f.kernel.dmaBufSetName(try f.dmaBuf(), String(repeating: "n", count: 32))
            return nil
        },
        BadInput(
            name: "mmap: longer than the buffer", expected: .EINVAL,
            source: "dma_buf_mmap_internal: overflowing the buffer's size"
        ) { f throws(KernelError) in
            try f.map(try f.dmaBuf(pages: 1), length: 2 * Int(f.page), protection: [.read, .write])
            return nil
        },
        BadInput(
            name: "mmap: offset at the end", expected: .EINVAL, source: "dma_buf_mmap_internal: vm_pgoff + pages > size"
        ) { f throws(KernelError) in
            try f.map(try f.dmaBuf(pages: 1), length: Int(f.page), protection: [.read], offset: f.page)
            return nil
        },
        BadInput(
            name: "mmap: private mapping of a CMA buffer", expected: .EINVAL,
            source: "cma_heap_mmap: !(vm_flags & VM_SHARED)"
        ) { f throws(KernelError) in
            try f.map(try f.dmaBuf(pages: 1, heap: "reserved"), length: Int(f.page), protection: [.read], shared: false)
            return nil
        },
        BadInput(
            name: "mmap: private mapping of a multi-page system buffer", expected: .EINVAL,
            source: "system_heap_mmap: remap_pfn_range per page on a COW vma"
        ) { f throws(KernelError) in
            try f.map(try f.dmaBuf(pages: 2), length: 2 * Int(f.page), protection: [.read], shared: false)
            return nil
        },
        BadInput(
            name: "mmap: writable mapping of a read-only dma-buf", expected: .EACCES,
            source: "do_mmap: shared write on an O_RDONLY file"
        ) { f throws(KernelError) in
            try f.map(try f.dmaBuf(pages: 1, fdFlags: 0o2000000), length: Int(f.page), protection: [.read, .write])
            return nil
        },
    ]

    static let syncFile: [BadInput] = [
        BadInput(
            name: "export sync_file: no direction", expected: .EINVAL,
            source: "dma_buf_export_sync_file: (flags & RW) == 0"
        ) { f throws(KernelError) in
            try f.kernel.dmaBufExportSyncFile(try f.dmaBuf(), flags: [])
        },
        BadInput(
            name: "export sync_file: unknown flag", expected: .EINVAL, source: "dma_buf_export_sync_file: flags & ~RW"
        ) { f throws(KernelError) in
            try f.kernel.dmaBufExportSyncFile(try f.dmaBuf(), flags: [.read, .end])
        },
        BadInput(
            name: "import sync_file: not a sync_file", expected: .EINVAL,
            source: "dma_buf_import_sync_file: sync_file_get_fence == NULL"
        ) { f throws(KernelError) in
            try f.kernel.dmaBufImportSyncFile(try f.dmaBuf(), flags: .write, syncFile: try f.memfd())
            return nil
        },
        BadInput(
            name: "import sync_file: no direction", expected: .EINVAL,
            source: "dma_buf_import_sync_file: (flags & RW) == 0"
        ) { f throws(KernelError) in
            try f.kernel.dmaBufImportSyncFile(try f.dmaBuf(), flags: [], syncFile: try f.syncFile())
            return nil
        },
        BadInput(
            name: "merge: other fd is not a sync_file", expected: .ENOENT,
            source: "sync_file_ioctl_merge: sync_file_fdget(fd2) == NULL"
        ) { f throws(KernelError) in
            try f.kernel.syncFileMerge(try f.syncFile(), try f.memfd(), name: "bad")
        },
        BadInput(name: "file info: on a dma-buf", expected: .ENOTTY, source: "dma-buf.c: dma_buf_ioctl default") {
            f throws(KernelError) in
            _ = try f.kernel.syncFileInfo(try f.dmaBuf())
            return nil
        },
    ]
}
