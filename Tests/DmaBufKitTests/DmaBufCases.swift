import DmaBufKit
import Foundation
import Testing

/// API behaviour that must hold on any kernel with the devices: each case is run by the
/// simulated suite and by the device suite below.
enum DmaBufCases {
    /// Heaps, udmabuf, dma-buf and sync_file behaviour every kernel must show.
    static let shared: [KernelCase] = [
        KernelCase("system heap buffer is zero-filled and keeps what is written") {
            try heapBufferIsZeroFilledAndKeepsWhatIsWritten($0, heap: "system")
        },
        KernelCase("reserved heap buffer is zero-filled and keeps what is written") {
            try heapBufferIsZeroFilledAndKeepsWhatIsWritten($0, heap: "reserved")
        },
        KernelCase("lengths are rounded up to pages") { try lengthIsRoundedUpToPages($0) },
        KernelCase("fdinfo of a system heap buffer") { try fdinfoShowsNameExporterAndReferences($0, heap: "system") },
        KernelCase("fdinfo of a reserved heap buffer") {
            try fdinfoShowsNameExporterAndReferences($0, heap: "reserved")
        },
        KernelCase("debugfs lists every buffer by name") { try debugfsListsEveryBufferByName($0) },
        KernelCase("udmabuf views are coherent with the memfd") { try udmabufViewsAreCoherentWithTheMemfd($0) },
        KernelCase("udmabuf list concatenates ranges in order") { try udmabufListConcatenatesRangesInOrder($0) },
        KernelCase("udmabuf keeps its pages after the memfd closes") { try udmabufKeepsPagesAfterTheMemfdCloses($0) },
        KernelCase("udmabuf errors say which rule broke") { try udmabufErrorsSayWhichRuleBroke($0) },
        KernelCase("an idle buffer exports a signalled sync_file") { try idleBufferExportsASignalledSyncFile($0) },
        KernelCase("an imported fence gates export and signals") { try importedFenceGatesExportAndSignals($0) },
        KernelCase("a merged sync_file waits for all members") { try mergedSyncFileWaitsForAllMembers($0) },
        KernelCase("SYNC_IOC_SET_DEADLINE is accepted on a sync_file, or is unknown (ENOTTY)") {
            try NewerInterfaceCases.setDeadlineIsAcceptedOrUnknown($0)
        },
        KernelCase("closing a timeline fails its pending fences") { try closingATimelineFailsItsPendingFences($0) },
        KernelCase("CPU access waits for a pending writer") { try cpuAccessWaitsForAPendingWriter($0) },
    ]

    static func heapBufferIsZeroFilledAndKeepsWhatIsWritten(_ kernel: any Kernel, heap name: String) throws {
        try expectNoLeaks(kernel) {
            let heap = try DmaHeap(name, kernel: kernel)
            for length in [4096, 1 << 20] {
                let buffer = try heap.allocate(length: length)
                #expect(buffer.length == length)
                try buffer.read { view in #expect(view.allSatisfy { $0 == 0 }) }
                try buffer.write { view in for i in view.indices { view[i] = UInt8(truncatingIfNeeded: i &* 7) } }
                try buffer.read { view in
                    #expect(view.indices.allSatisfy { view[$0] == UInt8(truncatingIfNeeded: $0 &* 7) })
                }
                try buffer.close()
            }
        }
    }

    static func lengthIsRoundedUpToPages(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let buffer = try DmaHeap("system", kernel: kernel).allocate(length: 100)
            #expect(buffer.length == kernel.pageSize)
            #expect(try buffer.info().size == UInt64(kernel.pageSize))
        }
    }

    static func fdinfoShowsNameExporterAndReferences(_ kernel: any Kernel, heap name: String) throws {
        try expectNoLeaks(kernel) {
            let buffer = try DmaHeap(name, kernel: kernel).allocate(length: 8192, name: "camera-frame-0")
            let info = try buffer.info()
            #expect(info.name == "camera-frame-0")
            #expect(info.exporter == name)
            #expect(info.size == 8192)
            #expect(info.count == 1)
            #expect(info.inode > 0)
            // A mapping holds its own reference to the dma-buf's file.
            try buffer.withMapping(.read) { _ throws in
                let whileMapped = try buffer.info().count
                #expect(whileMapped == 2)
            }
            #expect(try buffer.info().count == 1)
            // A duplicated descriptor is one more reference to the same dma-buf.
            let copy = try kernel.duplicate(buffer.fd)
            #expect(try buffer.info().count == 2)
            #expect(try DmaBufInfo(fdinfo: kernel.fdinfo(copy))?.inode == info.inode)
            try kernel.close(copy)
            #expect(try buffer.info().count == 1)
            try buffer.setName(String(repeating: "x", count: 31))
            #expect(try buffer.info().name == String(repeating: "x", count: 31))
            let error = expectKernelError(.EINVAL) { try buffer.setName(String(repeating: "y", count: 40)) }
            #expect(error?.reason?.contains("at most 31") == true)
        }
    }

    /// debugfs bufinfo lists every dma-buf in the system with its name, also one held only by
    /// a mapping after its last fd closed, and forgets it once the mapping goes.
    static func debugfsListsEveryBufferByName(_ kernel: any Kernel) throws {
        func listed(_ inode: UInt64) throws -> DmaBufInfo? {
            try DmaBufInfo.systemWide(kernel: kernel).first { $0.inode == inode }
        }
        try expectNoLeaks(kernel) {
            let system = try DmaHeap("system", kernel: kernel).allocate(length: 8192, name: "bufinfo-system")
            let reserved = try DmaHeap("reserved", kernel: kernel).allocate(length: 4096, name: "bufinfo-cma")
            let memfd = try Memfd(kernel: kernel, name: "bufinfo", length: 4096)
            let udmabuf = try UdmabufDevice(kernel: kernel).create(from: memfd)
            for (info, name) in [
                (try system.info(), "bufinfo-system"), (try reserved.info(), "bufinfo-cma"), (try udmabuf.info(), nil),
            ] {
                let entry = try #require(
                    try listed(info.inode), "inode \(info.inode) (\(info.exporter)) not in bufinfo")
                #expect(entry.exporter == info.exporter && entry.size == info.size && entry.count == 1)
                #expect(entry.name == name)
            }

            let inode = try reserved.info().inode
            let address = try kernel.mmap(reserved.fd, length: 4096, protection: [.read], shared: true, offset: 0)
            try reserved.close()
            #expect(try listed(inode)?.count == 1, "held by its mapping alone")
            try kernel.munmap(address, length: 4096)
            #expect(try listed(inode) == nil, "gone with its last reference")
        }
    }

    static func udmabufViewsAreCoherentWithTheMemfd(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try UdmabufDevice(kernel: kernel)
            let memfd = try Memfd(kernel: kernel, name: "coherency", length: 64 << 10)
            let buffer = try device.create(from: memfd)
            #expect(buffer.length == 64 << 10)
            #expect(try buffer.info().exporter == "udmabuf")
            try memfd.withMapping { view in
                view[0] = 0x11; view[view.count - 1] = 0x22
            }
            try buffer.readWrite { view in
                #expect(view[0] == 0x11 && view[view.count - 1] == 0x22)
                view[4096] = 0x33
            }
            try memfd.withMapping { view in #expect(view[4096] == 0x33) }
        }
    }

    static func udmabufListConcatenatesRangesInOrder(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let page = kernel.pageSize
            let device = try UdmabufDevice(kernel: kernel)
            let a = try Memfd(kernel: kernel, name: "a", length: 4 * page)
            let b = try Memfd(kernel: kernel, name: "b", length: 4 * page)
            try a.withMapping { view in for p in 0..<4 { view[p * page] = 0xA0 | UInt8(p) } }
            try b.withMapping { view in for p in 0..<4 { view[p * page] = 0xB0 | UInt8(p) } }
            let buffer = try device.create(ranges: [
                a.range(offset: 3 * page, size: page), b.range(offset: page, size: 2 * page),
                a.range(offset: 0, size: page),
            ])
            #expect(buffer.length == 4 * page)
            try buffer.read { view in
                #expect((0..<4).map { view[$0 * page] } == [0xA3, 0xB1, 0xB2, 0xA0])
            }
        }
    }

    static func udmabufKeepsPagesAfterTheMemfdCloses(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try UdmabufDevice(kernel: kernel)
            let memfd = try Memfd(kernel: kernel, name: "short-lived", length: 8192)
            try memfd.withMapping { $0[100] = 0x42 }
            let buffer = try device.create(from: memfd)
            try memfd.close()
            try buffer.read { view in #expect(view[100] == 0x42) }
        }
    }

    static func udmabufErrorsSayWhichRuleBroke(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try UdmabufDevice(kernel: kernel)
            let unsealed = try Memfd(kernel: kernel, name: "unsealed", length: 8192, seals: [])
            let error1 = expectKernelError(.EINVAL) { _ = try device.create(from: unsealed) }
            #expect(error1?.reason?.contains("lacks F_SEAL_SHRINK") == true, "\(String(describing: error1))")
            #expect(error1?.path == KernelPaths.udmabuf)
            #expect(error1?.operation == "UDMABUF_CREATE")

            let writeSealed = try Memfd(kernel: kernel, name: "write-sealed", length: 8192, seals: [.shrink, .write])
            let error2 = expectKernelError(.EINVAL) { _ = try device.create(from: writeSealed) }
            #expect(error2?.reason?.contains("F_SEAL_WRITE") == true, "\(String(describing: error2))")

            let good = try Memfd(kernel: kernel, name: "good", length: 3 * kernel.pageSize)
            let error3 = expectKernelError(.EINVAL) {
                _ = try device.create(from: good, offset: 100, size: kernel.pageSize)
            }
            #expect(
                error3?.reason?.contains("offset 100 is not a multiple of the page size") == true,
                "\(String(describing: error3))")

            let heapBuffer = try DmaHeap("system", kernel: kernel).allocate(length: 4096)
            let error4 = expectKernelError(.EBADFD) {
                _ = try device.create(ranges: [UdmabufItem(memfd: heapBuffer.fd, offset: 0, size: 4096)])
            }
            #expect(error4?.reason?.contains("is not a memfd") == true, "\(String(describing: error4))")
        }
    }

    static func idleBufferExportsASignalledSyncFile(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let buffer = try DmaHeap("system", kernel: kernel).allocate(length: 4096)
            let sync = try buffer.exportSyncFile(for: .write)
            #expect(try sync.status() == .signalled)
            #expect(try sync.wait(timeout: .zero))
        }
    }

    static func importedFenceGatesExportAndSignals(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let timeline = try SoftwareTimeline(kernel: kernel)
            let buffer = try DmaHeap("system", kernel: kernel).allocate(length: 4096)
            let fence = try timeline.fence(at: 2)
            #expect(try fence.info().fences.map(\.driver) == ["sw_sync"])
            try buffer.importSyncFile(fence, as: .write)
            let forReaders = try buffer.exportSyncFile(for: .read)
            #expect(try forReaders.status() == .active)
            #expect(try !forReaders.wait(timeout: .milliseconds(10)))
            try timeline.advance(by: 1)
            #expect(try forReaders.status() == .active)
            try timeline.advance(by: 1)
            #expect(try forReaders.wait(timeout: .seconds(5)))
            #expect(try forReaders.info().fences.allSatisfy { $0.status == 1 && $0.timestampNanoseconds > 0 })
            // A read fence does not hold back other readers, only writers.
            let readFence = try timeline.fence(at: 3)
            try buffer.importSyncFile(readFence, as: .read)
            #expect(try buffer.exportSyncFile(for: .read).status() == .signalled)
            #expect(try buffer.exportSyncFile(for: .write).status() == .active)
            try timeline.advance(by: 1)
        }
    }

    static func mergedSyncFileWaitsForAllMembers(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let timeline = try SoftwareTimeline(kernel: kernel)
            let other = try SoftwareTimeline(kernel: kernel)
            let merged = try timeline.fence(at: 1).merged(with: try other.fence(at: 1), name: "both")
            let info = try merged.info()
            #expect(info.name == "both")
            #expect(info.fences.count == 2)
            try timeline.advance()
            #expect(try merged.status() == .active)
            try other.advance()
            #expect(try merged.wait(timeout: .seconds(5)))
            #expect(try merged.status() == .signalled)
        }
    }

    static func closingATimelineFailsItsPendingFences(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let timeline = try SoftwareTimeline(kernel: kernel)
            let fence = try timeline.fence(at: 5)
            try timeline.close()
            #expect(try fence.wait(timeout: .seconds(5)))
            #expect(try fence.status() == .failed(.ENOENT))
        }
    }

    /// DMA_BUF_SYNC_START waits for the implicit write fence before the CPU may read.
    static func cpuAccessWaitsForAPendingWriter(_ kernel: any Kernel) throws {
        let timeline = try SoftwareTimeline(kernel: kernel)
        let buffer = try DmaHeap("system", kernel: kernel).allocate(length: 4096)
        try buffer.importSyncFile(try timeline.fence(at: 1), as: .write)
        let fd = buffer.fd
        let signalled = Flag()
        let sawSignalled = Flag()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            // Issued raw so that the buffer stays owned by the test thread.
            try? kernel.dmaBufSync(fd, flags: [.start, .read])
            if signalled.value { sawSignalled.set() }
            try? kernel.dmaBufSync(fd, flags: [.end, .read])
            done.signal()
        }
        #expect(
            done.wait(timeout: .now() + .milliseconds(100)) == .timedOut,
            "SYNC_START returned before the fence signalled")
        signalled.set()
        try timeline.advance()
        #expect(done.wait(timeout: .now() + .seconds(10)) == .success)
        #expect(sawSignalled.value)
    }
}

/// A thread-safe boolean for the cross-thread cases.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var state = false
    var value: Bool { lock.withLock { state } }
    func set() { lock.withLock { state = true } }
}
