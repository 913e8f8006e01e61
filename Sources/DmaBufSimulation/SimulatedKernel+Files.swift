import DmaBufKernel
import Foundation

/// Files and memory: the fd table, reads of the simulated sysfs/debugfs/procfs, mmap of
/// every kind of object, poll, and memfd with its seals.
extension SimulatedKernel {
    public func open(_ path: String, flags: OpenFlags) throws(KernelError) -> FileDescriptorNumber {
        let kind: SimulatedFile.Kind
        if configuration.deniedPaths.contains(path) { throw KernelError("open", .EACCES, path: path) }
        if path.hasPrefix(KernelPaths.dmaHeapDirectory + "/"),
            configuration.heaps.contains(String(path.dropFirst(KernelPaths.dmaHeapDirectory.count + 1)))
        {
            kind = .heap(name: String(path.dropFirst(KernelPaths.dmaHeapDirectory.count + 1)))
        } else if let device = drmDevice(at: path) {
            kind = .drm(SimulatedDRMFile(device: device))
        } else if let device = videoDevice(at: path) {
            kind = .video(try openVideo(device, nonBlocking: flags.contains(.nonBlocking)))
        } else if path == KernelPaths.udmabuf && configuration.udmabuf {
            kind = .udmabufDevice
        } else if path == KernelPaths.swSync && configuration.swSync {
            // sw_sync_debugfs_open: a new timeline named after the task.
            let name = truncated(ProcessInfo.processInfo.processName, to: 15)
            kind = .timeline(locked { SimulatedTimeline(context: allocateContext(), name: name) })
        } else {
            throw KernelError("open", .ENOENT, path: path)
        }
        return try install(kind, label: path, closeOnExec: flags.contains(.closeOnExec))
    }

    /// The tables first, then the host's number: once the host closes it, another thread may
    /// get the same number for a new file, whose entries must not be the ones removed here.
    public func close(_ fd: FileDescriptorNumber) throws(KernelError) {
        try locked { () throws(KernelError) in
            try requireOpen(fd, "close")
            descriptors.remove(fd.rawValue)
            if let file = files.removeValue(forKey: fd.rawValue) { drop(file) }
        }
        try host.close(fd)
    }

    public func duplicate(_ fd: FileDescriptorNumber) throws(KernelError) -> FileDescriptorNumber {
        let copy = try host.duplicate(fd)
        locked {
            descriptors.insert(copy.rawValue)
            if let file = files[fd.rawValue] {
                file.references += 1
                files[copy.rawValue] = file
            }
        }
        return copy
    }

    public func readFile(_ path: String) throws(KernelError) -> String {
        switch path {
        case KernelPaths.udmabufSizeLimit where configuration.udmabuf: return "\(configuration.udmabufSizeLimitMB)\n"
        case KernelPaths.udmabufListLimit where configuration.udmabuf: return "\(configuration.udmabufListLimit)\n"
        case KernelPaths.dmaBufDebugList: return locked { bufinfo() }
        case KernelPaths.memoryInfo:
            // The reserved heap's capacity is the CMA area (the real one also holds vb2-dma-contig's buffers).
            let free = configuration.reservedHeapCapacity - locked { heapUsage["reserved"] ?? 0 }
            return """
                MemTotal:       \(configuration.physicalMemory >> 10) kB
                CmaTotal:       \(configuration.reservedHeapCapacity >> 10) kB
                CmaFree:        \(free >> 10) kB

                """
        default:
            let sysfs = KernelPaths.videoSysfsDirectory + "/video"
            if path.hasPrefix(sysfs), path.hasSuffix("/name"),
                let index = Int(path.dropFirst(sysfs.count).dropLast("/name".count)),
                videoDevices.indices.contains(index)
            {
                return videoDevices[index].name + "\n"
            }
            let prefix = "/proc/self/fdinfo/"
            if path.hasPrefix(prefix), let fd = Int32(path.dropFirst(prefix.count)) {
                return try fdinfo(FileDescriptorNumber(rawValue: fd))
            }
            throw KernelError("open", .ENOENT, path: path)
        }
    }

    /// No writable control files are modelled (no debugfs CRC, …).
    public func writeFile(_ path: String, _ text: String) throws(KernelError) {
        throw KernelError("open", .ENOENT, path: path)
    }

    public func read(_ fd: FileDescriptorNumber, maxLength: Int) throws(KernelError) -> [UInt8] {
        if maxLength < 0 {
            throw KernelError("read", .EINVAL, reason: "length \(maxLength) is negative; no syscall issued")
        }
        guard let file = locked({ files[fd.rawValue] }) else { return try host.read(fd, maxLength: maxLength) }
        // A DRM file reads its events (through drmReadEvents); the others have no read op.
        if file.drm != nil { throw KernelError("read", .EINVAL, reason: "use drmReadEvents") }
        throw KernelError("read", .EINVAL)
    }

    public func listDirectory(_ path: String) throws(KernelError) -> [String] {
        if path == KernelPaths.drmDirectory, !drmDevices.isEmpty { return drmDevices.keys.sorted() }
        if path == KernelPaths.videoSysfsDirectory, !videoDevices.isEmpty {
            return videoDevices.indices.map { "video\($0)" }
        }
        guard path == KernelPaths.dmaHeapDirectory, !configuration.heaps.isEmpty else {
            throw KernelError("opendir", .ENOENT, path: path)
        }
        return configuration.heaps.sorted()
    }

    public func fdinfo(_ fd: FileDescriptorNumber) throws(KernelError) -> String {
        // The generic lines (pos, flags, mnt_id, ino) are the host's, then dma_buf_show_fdinfo's.
        let generic = try host.fdinfo(fd)
        return locked {
            guard let file = files[fd.rawValue], let buffer = file.dmaBuf else { return generic }
            var text = generic.split(separator: "\n").prefix(4).joined(separator: "\n") + "\n"
            text += "size:\t\(buffer.size)\ncount:\t\(file.references)\nexp_name:\t\(buffer.exporter)\n"
            if let name = buffer.name { text += "name:\t\(name)\n" }
            return text
        }
    }

    /// dma_buf_debug_show: every live dma-buf, whether held by descriptors or only by mappings.
    /// Caller holds the lock.
    private func bufinfo() -> String {
        var seen = Set<ObjectIdentifier>()
        let live = (files.values.map(Optional.some) + mappings.values.map(\.file)).compactMap { $0 }
            .filter { $0.dmaBuf != nil && seen.insert(ObjectIdentifier($0)).inserted }
        var text = "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
        for file in live.sorted(by: { $0.inode < $1.inode }) {
            let buffer = file.dmaBuf!
            let numbers = String(
                format: "%08llu\t%08x\t%08x\t%08ld", buffer.size, buffer.writable ? O_RDWR : O_RDONLY,
                buffer.writable ? 0x1f : 0x1d, file.references)
            text +=
                "\(numbers)\t\(buffer.exporter)\t\(String(format: "%08llu", file.inode))\t\(buffer.name ?? "<none>")\n"
            text += "\tAttached Devices:\nTotal 0 devices attached\n\n"
        }
        text += "\nTotal \(live.count) objects, \(live.reduce(0) { $0 + $1.dmaBuf!.size }) bytes\n"
        return text
    }

    public func descriptorFlags(_ fd: FileDescriptorNumber) throws(KernelError) -> Int32 {
        try host.descriptorFlags(fd)
    }

    // MARK: Memory

    public func mmap(
        _ fd: FileDescriptorNumber, length: Int, protection: MemoryProtection, shared: Bool, offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer {
        guard let file = locked({ files[fd.rawValue] }) else {
            return try host.mmap(fd, length: length, protection: protection, shared: shared, offset: offset)
        }
        if let drm = file.drm {
            return try mapGEM(of: drm, file: file, length: length, protection: protection, offset: offset)
        }
        if let video = file.video {
            return try mapVideoBuffer(video, file: file, length: length, protection: protection, offset: offset)
        }
        guard let buffer = file.dmaBuf else {
            throw KernelError("mmap", .ENODEV)  // heap, udmabuf and sync_file files have no mmap
        }
        let page = UInt64(pageSize)
        let pages = (UInt64(length) + page - 1) / page
        // do_mmap: zero length or an unaligned offset.
        if length == 0 || offset % page != 0 { throw KernelError("mmap", .EINVAL) }
        // do_mmap: a shared writable mapping needs a file opened for writing.
        if shared && protection.contains(.write) && !buffer.writable { throw KernelError("mmap", .EACCES) }
        // dma_buf_mmap_internal: "check for overflowing the buffer's size".
        if offset / page + pages > buffer.size / page { throw KernelError("mmap", .EINVAL) }
        if !shared {
            switch buffer.mmapRule {
            case .sharedOnly: throw KernelError("mmap", .EINVAL)  // cma_heap_mmap, mmap_udmabuf
            case .privateSinglePageOnly where pages > 1: throw KernelError("mmap", .EINVAL)  // remap_pfn_range on a COW vma
            default: break
            }
        }
        let base: UnsafeMutableRawPointer
        if buffer.segments.isEmpty {
            base = try host.mmap(fd, length: length, protection: protection, shared: shared, offset: offset)
        } else {
            base = try mapSegments(
                buffer.segments, length: Int(pages * page), protection: protection, shared: shared, offset: offset)
        }
        locked {
            file.references += 1
            mappings[base] = (file, length)
        }
        return base
    }

    /// A udmabuf's pages come from several memfds: reserve the range, then map each piece in place.
    func mapSegments(
        _ segments: [SimulatedSegment], length: Int, protection: MemoryProtection, shared: Bool, offset: UInt64
    ) throws(KernelError) -> UnsafeMutableRawPointer {
        guard let reserved = Foundation.mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            reserved != MAP_FAILED
        else { throw KernelError("mmap", Errno(rawValue: errno)) }
        var position: UInt64 = 0  // offset within the buffer of the current segment
        for segment in segments {
            let start = max(position, offset)
            let end = min(position + segment.size, offset + UInt64(length))
            if start < end {
                let target = reserved + Int(start - offset)
                let placed = Foundation.mmap(
                    target, Int(end - start), protection.rawValue, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED,
                    segment.memfd.rawValue, off_t(segment.offset + (start - position)))
                if placed == MAP_FAILED {
                    let failure = errno
                    Foundation.munmap(reserved, length)
                    throw KernelError("mmap", Errno(rawValue: failure))
                }
            }
            position += segment.size
        }
        return reserved
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(KernelError) {
        let page = pageSize
        // The record first, then the host's mapping: once unmapped, another thread may map a
        // new buffer at the same address.
        let record = locked { mappings.removeValue(forKey: address) }
        // Segmented mappings were made page-rounded; unmap all of it.
        let span = record.map { ($0.length + page - 1) / page * page } ?? length
        do { try host.munmap(address, length: max(span, length)) } catch {
            if let record { locked { mappings[address] = record } }
            throw error
        }
        if let file = record?.file { locked { drop(file) } }
    }

    public func poll(
        _ fd: FileDescriptorNumber, events: PollEvents, timeoutMilliseconds: Int32
    )
        throws(KernelError) -> PollEvents
    {
        if locked({ files[fd.rawValue] }) == nil {
            return try host.poll(fd, events: events, timeoutMilliseconds: timeoutMilliseconds)
        }
        return try poll([(fd, events)], timeoutMilliseconds: timeoutMilliseconds)[0]
    }

    public func poll(
        _ requests: [(fd: FileDescriptorNumber, events: PollEvents)], timeoutMilliseconds: Int32
    )
        throws(KernelError) -> [PollEvents]
    {
        if requests.count > 64 { throw KernelError("poll", .EINVAL) }
        let simulated = locked { requests.map { files[$0.fd.rawValue] } }
        // sync_file_poll: readable once signalled. dma_buf_poll: readable once writers are done,
        // writable once everyone is. (Lock held.)
        func ready(_ file: SimulatedFile) -> PollEvents {
            switch file.kind {
            case .syncFile(let sync): return sync.isSignalled ? [.readable] : []
            case .drm(let drm): return drm.events.isEmpty ? [] : [.readable]  // drm_poll: pending events
            case .video(let video): return videoReadiness(video)
            case .dmaBuf(let buffer):
                var result: PollEvents = []
                if buffer.pendingFences(forWrite: false).isEmpty { result.insert(.readable) }
                if buffer.pendingFences(forWrite: true).isEmpty { result.insert(.writable) }
                return result
            default: return []
            }
        }
        let deadline =
            timeoutMilliseconds < 0
            ? Date.distantFuture : Date(timeIntervalSinceNow: Double(timeoutMilliseconds) / 1000)
        // Descriptors of the host (a pipe, an eventfd) are looked at between short waits.
        let hostSlice = simulated.contains { $0 == nil } ? 0.01 : Double.infinity
        state.lock()
        defer { state.unlock() }
        while true {
            var now: [PollEvents] = []
            for (request, file) in zip(requests, simulated) {
                // Errors and hang-ups are reported whether asked for or not.
                let reported = request.events.union([.error, .hangUp])
                if let file {
                    now.append(ready(file).intersection(reported))
                } else {
                    now.append(try host.poll(request.fd, events: request.events, timeoutMilliseconds: 0))
                }
            }
            if now.contains(where: { !$0.isEmpty }) || Date() >= deadline { return now }
            _ = state.wait(until: min(deadline, Date(timeIntervalSinceNow: hostSlice)))
        }
    }

    public func memfdCreate(name: String, flags: MemfdFlags) throws(KernelError) -> FileDescriptorNumber {
        let fd = try host.memfdCreate(name: name, flags: flags)
        locked { _ = descriptors.insert(fd.rawValue) }
        return fd
    }

    public func truncate(_ fd: FileDescriptorNumber, length: UInt64) throws(KernelError) {
        if locked({ files[fd.rawValue] }) != nil { throw KernelError("ftruncate", .EINVAL) }
        try host.truncate(fd, length: length)
    }

    public func addSeals(_ fd: FileDescriptorNumber, _ seals: Seals) throws(KernelError) {
        if locked({ files[fd.rawValue] }) != nil { throw KernelError("F_ADD_SEALS", .EINVAL) }
        try host.addSeals(fd, seals)
    }

    public func seals(_ fd: FileDescriptorNumber) throws(KernelError) -> Seals {
        if locked({ files[fd.rawValue] }) != nil { throw KernelError("F_GET_SEALS", .EINVAL) }
        return try host.seals(fd)
    }
}
