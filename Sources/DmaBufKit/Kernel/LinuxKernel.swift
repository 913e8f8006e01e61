import CDmaBuf

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The real kernel, through the C shim. Each shim function has exactly one caller here.
public final class LinuxKernel: Kernel {
    /// Read once: glibc answers it with a sysinfo(2) call, which would otherwise double the
    /// syscalls of every allocation (each checks its length against it).
    public let physicalMemory: UInt64

    public init() { physicalMemory = cdmabuf_physical_memory() }

    public var kind: String { "linux" }
    public var pacesFrames: Bool { true }
    public var pageSize: Int { Int(cdmabuf_page_size()) }

    /// Runs a shim call, retrying EINTR, and turns `-errno` into a `KernelError`.
    @inline(__always)
    func call(_ operation: String, _ body: () -> Int32) throws(KernelError) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            if result == -EINTR { continue }
            throw KernelError(operation, Errno(rawValue: -result))
        }
    }

    @inline(__always)
    private func newFD(_ operation: String, _ body: () -> Int32) throws(KernelError) -> FileDescriptorNumber {
        FileDescriptorNumber(rawValue: try call(operation, body))
    }

    public func kernelRelease() throws(KernelError) -> String {
        var buffer = [CChar](repeating: 0, count: 65)
        _ = try call("uname") { cdmabuf_kernel_release(&buffer, buffer.count) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Files

    public func open(_ path: String, flags: OpenFlags) throws(KernelError) -> FileDescriptorNumber {
        do { return try newFD("open") { cdmabuf_open(path, flags.rawValue) } } catch { throw error.at(path) }
    }

    public func close(_ fd: FileDescriptorNumber) throws(KernelError) {
        // Never retried: after EINTR the descriptor is already gone on Linux.
        let result = cdmabuf_close(fd.rawValue)
        if result < 0 { throw KernelError("close", Errno(rawValue: -result)) }
    }

    public func duplicate(_ fd: FileDescriptorNumber) throws(KernelError) -> FileDescriptorNumber {
        try newFD("F_DUPFD_CLOEXEC") { cdmabuf_dup_cloexec(fd.rawValue) }
    }

    public func readFile(_ path: String) throws(KernelError) -> String {
        let fd = try open(path, flags: [.closeOnExec])
        defer { try? close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count: Int
            do { count = try readChunk(fd, into: &chunk) } catch { throw error.at(path) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func writeFile(_ path: String, _ text: String) throws(KernelError) {
        let fd = try open(path, flags: [.writeOnly, .closeOnExec])
        defer { try? close(fd) }
        let bytes = Array(text.utf8)
        do { _ = try call("write") { Int32(cdmabuf_write(fd.rawValue, bytes, bytes.count)) } } catch { throw error.at(path) }
    }

    public func read(_ fd: FileDescriptorNumber, maxLength: Int) throws(KernelError) -> [UInt8] {
        if maxLength < 0 { throw KernelError("read", .EINVAL, reason: "length \(maxLength) is negative; no syscall issued") }
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let count = try readChunk(fd, into: &buffer)
        return Array(buffer[0..<count])
    }

    /// One `read(2)` into `buffer`: the byte count, 0 at end of file.
    func readChunk(_ fd: FileDescriptorNumber, into buffer: inout [UInt8]) throws(KernelError) -> Int {
        let count = buffer.count
        return Int(try call("read") { Int32(cdmabuf_read(fd.rawValue, &buffer, count)) })
    }

    public func listDirectory(_ path: String) throws(KernelError) -> [String] {
        guard let dir = opendir(path) else { throw KernelError("opendir", Errno(rawValue: errno), path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func fdinfo(_ fd: FileDescriptorNumber) throws(KernelError) -> String {
        try readFile(KernelPaths.fdinfo(fd))
    }

    public func descriptorFlags(_ fd: FileDescriptorNumber) throws(KernelError) -> Int32 {
        try call("F_GETFD") { cdmabuf_fd_flags(fd.rawValue) }
    }


    // MARK: Memory

    public func mmap(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, shared: Bool,
        offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer {
        var address: UnsafeMutableRawPointer?
        _ = try call("mmap") {
            cdmabuf_mmap(
                fd.rawValue, UInt64(length), protection.rawValue, shared ? MAP_SHARED : MAP_PRIVATE,
                offset, &address)
        }
        return address!
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(KernelError) {
        _ = try call("munmap") { cdmabuf_munmap(address, UInt64(length)) }
    }

    public func poll(_ fd: FileDescriptorNumber, events: PollEvents, timeoutMilliseconds: Int32)
        throws(KernelError) -> PollEvents
    {
        var revents: Int16 = 0
        _ = try call("poll") { cdmabuf_poll(fd.rawValue, events.rawValue, timeoutMilliseconds, &revents) }
        return PollEvents(rawValue: revents)
    }

    public func memfdCreate(name: String, flags: UInt32) throws(KernelError) -> FileDescriptorNumber {
        try newFD("memfd_create") { cdmabuf_memfd_create(name, flags) }
    }

    public func truncate(_ fd: FileDescriptorNumber, length: UInt64) throws(KernelError) {
        _ = try call("ftruncate") { cdmabuf_ftruncate(fd.rawValue, length) }
    }

    public func addSeals(_ fd: FileDescriptorNumber, _ seals: Seals) throws(KernelError) {
        _ = try call("F_ADD_SEALS") { cdmabuf_add_seals(fd.rawValue, seals.rawValue) }
    }

    public func seals(_ fd: FileDescriptorNumber) throws(KernelError) -> Seals {
        Seals(rawValue: try call("F_GET_SEALS") { cdmabuf_get_seals(fd.rawValue) })
    }

    // MARK: dma-heap, udmabuf

    public func dmaHeapAllocate(
        heap: FileDescriptorNumber, length: UInt64, fdFlags: UInt32, heapFlags: UInt64, fdField: UInt32
    ) throws(KernelError) -> FileDescriptorNumber {
        try newFD("DMA_HEAP_IOCTL_ALLOC") {
            cdmabuf_dma_heap_alloc(heap.rawValue, length, fdFlags, heapFlags, fdField)
        }
    }

    public func udmabufCreate(
        device: FileDescriptorNumber, memfd: FileDescriptorNumber, flags: UInt32, offset: UInt64, size: UInt64
    ) throws(KernelError) -> FileDescriptorNumber {
        try newFD("UDMABUF_CREATE") {
            cdmabuf_udmabuf_create(device.rawValue, UInt32(bitPattern: memfd.rawValue), flags, offset, size)
        }
    }

    public func udmabufCreateList(device: FileDescriptorNumber, flags: UInt32, items: [UdmabufItem])
        throws(KernelError) -> FileDescriptorNumber
    {
        let raw = items.map {
            cdmabuf_udmabuf_item(memfd: UInt32(bitPattern: $0.memfd.rawValue), pad: 0, offset: $0.offset, size: $0.size)
        }
        return try newFD("UDMABUF_CREATE_LIST") {
            cdmabuf_udmabuf_create_list(device.rawValue, flags, raw, UInt32(raw.count))
        }
    }

    // MARK: dma-buf

    public func dmaBufSync(_ fd: FileDescriptorNumber, flags: UInt64) throws(KernelError) {
        _ = try call("DMA_BUF_IOCTL_SYNC") { cdmabuf_dma_buf_sync(fd.rawValue, flags) }
    }

    public func dmaBufSetName(_ fd: FileDescriptorNumber, _ name: String) throws(KernelError) {
        _ = try call("DMA_BUF_SET_NAME_B") { cdmabuf_dma_buf_set_name(fd.rawValue, name) }
    }

    public func dmaBufExportSyncFile(_ fd: FileDescriptorNumber, flags: UInt32) throws(KernelError)
        -> FileDescriptorNumber
    {
        try newFD("DMA_BUF_IOCTL_EXPORT_SYNC_FILE") { cdmabuf_dma_buf_export_sync_file(fd.rawValue, flags) }
    }

    public func dmaBufImportSyncFile(_ fd: FileDescriptorNumber, flags: UInt32, syncFile: FileDescriptorNumber)
        throws(KernelError)
    {
        _ = try call("DMA_BUF_IOCTL_IMPORT_SYNC_FILE") {
            cdmabuf_dma_buf_import_sync_file(fd.rawValue, flags, syncFile.rawValue)
        }
    }

    // MARK: sync_file, sw_sync

    public func syncFileMerge(_ fd: FileDescriptorNumber, _ other: FileDescriptorNumber, name: String)
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

    public func swSyncCreateFence(timeline: FileDescriptorNumber, value: UInt32, name: String)
        throws(KernelError) -> FileDescriptorNumber
    {
        try newFD("SW_SYNC_IOC_CREATE_FENCE") { cdmabuf_sw_sync_create_fence(timeline.rawValue, value, name) }
    }

    public func swSyncIncrement(timeline: FileDescriptorNumber, by count: UInt32) throws(KernelError) {
        _ = try call("SW_SYNC_IOC_INC") { cdmabuf_sw_sync_inc(timeline.rawValue, count) }
    }

    private static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func string(_ raw: UnsafeRawBufferPointer) -> String {
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
