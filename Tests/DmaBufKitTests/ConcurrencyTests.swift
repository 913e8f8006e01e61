import DmaBufKit
import DmaBufSimulation
import Foundation
import Synchronization
import Testing

/// Threads and reused fd numbers, on the simulated kernel and in the VM on the real one.
enum ConcurrencyCases {
    static let threads = 8

    /// Races every kernel must survive. A round on the real kernel costs many times one on
    /// the model, and a race shows within a few hundred: the model gets four times as many.
    static let shared: [KernelCase] = [
        KernelCase("concurrent imports on one device") {
            try concurrentImportsOnOneDevice($0, rounds: $0 is LinuxKernel ? 500 : 2000)
        },
        KernelCase("concurrent allocations") { try concurrentAllocations($0, rounds: $0 is LinuxKernel ? 250 : 1000) },
        KernelCase("a dropped DRM device leaves the next file alone") {
            try aDroppedDRMDeviceLeavesTheNextFileAlone($0)
        },
        KernelCase("a dropped video device leaves the next file alone") {
            try aDroppedVideoDeviceLeavesTheNextFileAlone($0)
        },
    ]

    /// 8 threads import one dma-buf into one DRM device, add a framebuffer over it and close
    /// both, thousands of times: the kernel hands back the same GEM handle on every import, so
    /// a share counted outside the import's lock would close it under another thread's
    /// framebuffer (ADDFB2 ENOENT, GEM_CLOSE EINVAL). Zero failures, nothing left.
    static func concurrentImportsOnOneDevice(_ kernel: any Kernel, rounds: Int) throws {
        try expectNoLeaks(kernel) {
            let display = try DRMDevice(driver: "vkms", kernel: kernel)
            let heap = try DmaHeap("system", kernel: kernel)
            let buffer = try heap.allocate(length: 64 * 64 * 4)
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                for _ in 0..<rounds {
                    do {
                        let gem = try display.importBuffer(buffer)
                        let framebuffer = try display.addFramebuffer(
                            DRMFramebufferRequest(
                                width: 64, height: 64, format: .xrgb8888, handles: [gem.handle], pitches: [256]))
                        try framebuffer.remove()
                        try gem.close()
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            let found = failures.withLock { $0 }
            #expect(found.isEmpty, "\(found.count) of \(threads * rounds) rounds failed, e.g. \(found.prefix(3))")
            try buffer.close()
            try display.close()
        }
    }

    /// 8 threads allocate and close heap buffers and udmabufs, thousands of times: every call
    /// succeeds and, at the end, nothing is open and (simulated) no heap memory is charged.
    static func concurrentAllocations(_ kernel: any Kernel, rounds: Int) throws {
        expectNoLeaks(kernel) {
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                do {
                    let heap = try DmaHeap(thread % 2 == 0 ? "system" : "reserved", kernel: kernel)
                    let udmabuf = try UdmabufDevice(kernel: kernel)
                    for _ in 0..<rounds {
                        try heap.allocate(length: 1 << 16).close()
                        let memfd = try Memfd(kernel: kernel, name: "stress", length: 1 << 16)
                        try udmabuf.create(from: memfd).close()
                        try memfd.close()
                    }
                    try udmabuf.close()
                    try heap.close()
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            let found = failures.withLock { $0 }
            #expect(found.isEmpty, "\(found)")
        }
        if let simulated = kernel as? SimulatedKernel {
            #expect(simulated.heapBytesInUse("reserved") == 0 && simulated.heapBytesInUse("system") == 0)
        }
    }

    /// The fd-reuse cases need the next file to get the dropped number, which the kernel gives
    /// (the lowest free one) unless another thread of the test process opens or closes a file
    /// in between: a case that did not get it cleans up and tries again.
    static let attempts = 200

    /// A DRM device dropped without close() while a GEM buffer of it lives; another file gets
    /// its fd number and a dumb buffer with the same handle number. Releasing the old buffer
    /// must not touch the new file: its buffer stays mappable.
    static func aDroppedDRMDeviceLeavesTheNextFileAlone(_ kernel: any Kernel) throws {
        var arranged = false
        for _ in 0..<attempts where !arranged {
            try expectNoLeaks(kernel) {
                var stale: GEMBuffer?
                var number: FileDescriptorNumber?
                do {
                    let old = try DRMDevice(driver: "vgem", kernel: kernel)
                    number = old.fd
                    stale = try old.createDumbBuffer(width: 64, height: 64)
                }  // `old` dropped without close(): its descriptor closes, the number is free
                let staleHandle = stale?.handle
                let next = try DRMDevice(driver: "vgem", kernel: kernel)
                let fresh = try next.createDumbBuffer(width: 64, height: 64)
                arranged = next.fd == number && fresh.handle == staleHandle
                try stale.take()?.close()  // must not destroy `fresh`
                try next.withMapping(fresh) { view in view[0] = 0x5a }
                try fresh.close()
                try next.close()
            }
        }
        #expect(
            arranged, "in \(attempts) tries the next file never got the dropped number and handle: the case did not run"
        )
    }

    /// A V4L2 device dropped without close() while its queue lives; another node's file gets
    /// the number. The queue's STREAMOFF/REQBUFS(0) go to its own descriptor, never to the new
    /// file, whose buffers survive.
    static func aDroppedVideoDeviceLeavesTheNextFileAlone(_ kernel: any Kernel) throws {
        var arranged = false
        for _ in 0..<attempts where !arranged {
            try expectNoLeaks(kernel) {
                var queue: V4L2Queue?
                var number: FileDescriptorNumber?
                do {
                    let old = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
                    number = old.descriptor.fd
                    queue = try V4L2Queue(device: old, type: .videoCapture, memory: .mmap, count: 2)
                }  // `old` dropped without close()
                let next = try V4L2Device(name: "vivid-000-vid-out", kernel: kernel)
                arranged = next.descriptor.fd == number
                let nextQueue = try V4L2Queue(device: next, type: .videoOutput, memory: .mmap, count: 2)
                try queue.take()?.release()  // through its own descriptor of the capture node
                #expect(
                    try nextQueue.info(BufferIndex(rawValue: 1)).index == 1, "the output node's buffers are still there"
                )
                try nextQueue.release()
                try next.close()
            }
        }
        #expect(arranged, "in \(attempts) tries the next file never got the dropped number: the case did not run")
    }
}

@Suite("Threads and reused fds on the simulated kernel")
struct SimulatedConcurrencyTests {
    @Test(arguments: SimulatedKernel.Version.allCases, ConcurrencyCases.shared)
    func shared(_ version: SimulatedKernel.Version, _ kernelCase: KernelCase) throws {
        try kernelCase.run(on: SimulatedKernel(version: version))
    }
}

extension DeviceTests {
    @Suite(
        "Threads and reused fds on the real kernel",
        .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
    struct ConcurrencyOnDevices {
        @Test(arguments: ConcurrencyCases.shared)
        func shared(_ kernelCase: KernelCase) throws { try kernelCase.run(on: LinuxKernel()) }
    }
}
