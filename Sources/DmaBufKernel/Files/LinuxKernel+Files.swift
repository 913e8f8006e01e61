internal import CDmaBuf

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Files and memory: open/close/read, mmap, poll, memfd and its seals.
extension LinuxKernel {
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
        do { _ = try call("write") { Int32(cdmabuf_write(fd.rawValue, bytes, bytes.count)) } } catch {
            throw error.at(path)
        }
    }

    public func read(_ fd: FileDescriptorNumber, maxLength: Int) throws(KernelError) -> [UInt8] {
        if maxLength < 0 {
            throw KernelError("read", .EINVAL, reason: "length \(maxLength) is negative; no syscall issued")
        }
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

    public func poll(
        _ fd: FileDescriptorNumber, events: PollEvents, timeoutMilliseconds: Int32
    )
        throws(KernelError) -> PollEvents
    {
        var revents: Int16 = 0
        _ = try call("poll") { cdmabuf_poll(fd.rawValue, events.rawValue, timeoutMilliseconds, &revents) }
        return PollEvents(rawValue: revents)
    }

    public func poll(
        _ requests: [(fd: FileDescriptorNumber, events: PollEvents)], timeoutMilliseconds: Int32
    )
        throws(KernelError) -> [PollEvents]
    {
        let fds = requests.map(\.fd.rawValue), events = requests.map(\.events.rawValue)
        var revents = [Int16](repeating: 0, count: requests.count)
        _ = try call("poll") {
            cdmabuf_poll_many(fds, events, &revents, Int32(requests.count), timeoutMilliseconds)
        }
        return revents.map(PollEvents.init(rawValue:))
    }

    public func memfdCreate(name: String, flags: MemfdFlags) throws(KernelError) -> FileDescriptorNumber {
        try newFD("memfd_create") { cdmabuf_memfd_create(name, flags.rawValue) }
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
}
