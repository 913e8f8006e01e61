import DmaBufKit
import DmaBufSimulation
import Testing

/// V4L2 behaviour on vivid and vim2m: each case runs on the real kernel in the VM and, where
/// the simulation has the node (all of them: vivid's two instances and vim2m), on it too.
enum V4L2Cases {
    /// V4L2 behaviour every kernel must show: vivid, vim2m and vb2 with exported and imported dma-bufs.
    static let shared: [KernelCase] =
        [
            KernelCase("exported buffers show the captured frames") { try exportedBuffersShowTheCapturedFrames($0) },
            KernelCase("capture into heap buffers, single-planar") {
                try captureIntoHeapBuffers($0, "vivid-000-vid-cap", .videoCapture)
            },
            KernelCase("capture into heap buffers, multi-planar") {
                try captureIntoHeapBuffers($0, "vivid-001-vid-cap", .videoCaptureMultiplanar)
            },
            KernelCase("output from heap buffers") { try outputFromHeapBuffers($0) },
            KernelCase("udmabuf into vivid: frames, or refused at QBUF without vmap") { try udmabufIntoVivid($0) },
            KernelCase("too few planes") { try tooFewPlanes($0) },
            KernelCase("exported buffers outlive their queue") { try exportedBuffersOutliveTheirQueue($0) },
            KernelCase("mem2mem round trip through heap buffers") { try mem2memRoundTripThroughHeapBuffers($0) },
            KernelCase("deterministic vivid frames repeat") { try deterministicVividFramesRepeat($0) },
            KernelCase("injected errors tear down cleanly") { try injectedErrorsTearDownCleanly($0) },
            KernelCase("NV12M planes export and import") { try V4L2FormatCases.nv12mPlanesExportAndImport($0) },
            KernelCase("output planes with data offsets") { try V4L2FormatCases.outputPlanesWithDataOffsets($0) },
            KernelCase("CREATE_BUFS adds larger buffers") { try V4L2FormatCases.createBuffersAddsLargerBuffers($0) },
            KernelCase("frame sizes and intervals") { try V4L2FormatCases.frameSizesAndIntervals($0) },
            KernelCase("VIDIOC_REMOVE_BUFS frees the buffers it names, or is unknown (ENOTTY)") {
                try NewerInterfaceCases.removeBuffersFreesWhatItNames($0)
            },
            KernelCase("disconnect mid-stream") { try V4L2FormatCases.disconnectMidStream($0) },
        ]
        + V4L2FormatCases.conversions.map { node, type, pixelFormat in
            KernelCase("\(node) \(pixelFormat) converted by libv4lconvert shows the bars") {
                try V4L2FormatCases.convertedFramesShowTheBars($0, node, type, pixelFormat)
            }
        }

    /// vivid capture with MMAP buffers, each exported with EXPBUF: the dma-buf's CPU view
    /// (under DMA_BUF_IOCTL_SYNC) equals the MMAP view of the same buffer, frame after frame.
    static func exportedBuffersShowTheCapturedFrames(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            #expect(device.capability.driver == "vivid")
            let type = V4L2BufferType.videoCapture
            #expect(try device.formats(type).contains(.rgb24))
            // vivid's webcam input has discrete sizes: take the one it settles on.
            let format = try device.setFormat(V4L2Format(type: type, width: 640, height: 360, pixelFormat: .rgb24))
            #expect(format.pixelFormat == .rgb24 && format.planes[0].bytesPerLine >= format.width * 3)

            let fd = device.fd
            let granted = try kernel.v4l2RequestBuffers(fd, type: type, memory: .mmap, count: 4)
            #expect(granted.count >= 2)
            var mappings: [UnsafeMutableRawBufferPointer] = []
            var exported: [FileDescriptorNumber] = []
            for index in 0..<granted.count {
                let info = try kernel.v4l2QueryBuffer(fd, type: type, memory: .mmap, index: index, planes: 1)
                let length = Int(info.planes[0].length)
                let base = try kernel.mmap(
                    fd, length: length, protection: [.read], shared: true, offset: UInt64(info.planes[0].memoryOffset))
                mappings.append(UnsafeMutableRawBufferPointer(start: base, count: length))
                exported.append(
                    try kernel.v4l2ExportBuffer(
                        fd, type: type, index: index, plane: 0, flags: [.closeOnExec, .readWrite]))
                _ = try kernel.v4l2QueueBuffer(
                    fd, V4L2BufferInfo(index: index, type: type, memory: .mmap, planes: [V4L2Plane()]))
            }
            try kernel.v4l2Stream(fd, type: type, on: true)
            var sequences: [UInt32] = []
            while sequences.count < 6 {
                guard try kernel.poll(fd, events: .readable, timeoutMilliseconds: 5000).contains(.readable),
                    let frame = try kernel.v4l2DequeueBuffer(fd, type: type, memory: .mmap, planes: 1)
                else { Issue.record("no frame within 5 s"); break }
                sequences.append(frame.sequence)
                let used = Int(frame.planes[0].bytesUsed)
                #expect(used == Int(format.planes[0].sizeImage))
                let shared = DmaBuf(
                    OwnedDescriptor(try kernel.duplicate(exported[Int(frame.index)]), kernel: kernel, path: "EXPBUF"),
                    length: mappings[Int(frame.index)].count)
                let same = try shared.read { view in
                    view.prefix(used).elementsEqual(mappings[Int(frame.index)].prefix(used))
                }
                #expect(same, "frame \(frame.sequence): the exported dma-buf differs from the MMAP view")
                try shared.close()
                _ = try kernel.v4l2QueueBuffer(
                    fd, V4L2BufferInfo(index: frame.index, type: type, memory: .mmap, planes: [V4L2Plane()]))
            }
            // Frames may be dropped here (a debug build under TCG is slow), never reordered.
            #expect(
                sequences == sequences.sorted() && Set(sequences).count == sequences.count,
                "sequence numbers: \(sequences)")
            // Take every buffer back; then nothing can become ready, and on a non-blocking fd
            // DQBUF says so with EAGAIN, which is a result (nil), not an error.
            for _ in 0..<granted.count {
                guard try kernel.poll(fd, events: .readable, timeoutMilliseconds: 5000).contains(.readable),
                    try kernel.v4l2DequeueBuffer(fd, type: type, memory: .mmap, planes: 1) != nil
                else { Issue.record("a queued buffer did not come back"); break }
            }
            #expect(try kernel.v4l2DequeueBuffer(fd, type: type, memory: .mmap, planes: 1) == nil)
            try kernel.v4l2Stream(fd, type: type, on: false)

            for fd in exported { try kernel.close(fd) }
            for mapping in mappings { try kernel.munmap(mapping.baseAddress!, length: mapping.count) }
            _ = try kernel.v4l2RequestBuffers(fd, type: type, memory: .mmap, count: 0)
            try device.close()
        }
    }
}

extension V4L2Cases {
    /// Capture into system-heap buffers (DMABUF memory): vivid fills them, on the single- and
    /// the multi-planar instance.
    static func captureIntoHeapBuffers(_ kernel: any Kernel, _ node: String, _ type: V4L2BufferType) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: node, kernel: kernel)
            let format = try device.format(type)
            let size = Int(format.planes[0].sizeImage)
            let heap = try DmaHeap("system", kernel: kernel)
            let first = try heap.allocate(length: size, name: "capture-0")
            let second = try heap.allocate(length: size, name: "capture-1")
            let queue = try V4L2Queue(device: device, type: type, memory: .dmabuf, count: 2)
            #expect(queue.count == 2 && queue.planeCount == format.planes.count)
            try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [first.fd])
            try queue.enqueue(BufferIndex(rawValue: 1), dmaBufs: [second.fd])
            try queue.start()
            let frame = try #require(try queue.dequeue(waiting: .seconds(5)), "a frame within 5 s")
            #expect(frame.planes[0].bytesUsed == UInt32(size))
            #expect(frame.planes[0].fd == (frame.index == 0 ? first.fd.rawValue : second.fd.rawValue))
            let filled =
                try
                (frame.index == 0 ? first.read { $0.contains { $0 != 0 } } : second.read { $0.contains { $0 != 0 } })
            #expect(filled, "vivid wrote the picture into the heap buffer")
            try queue.release()
            try second.close()
            try first.close()
            try device.close()
        }
    }

    /// Output from system-heap buffers: vivid takes them and gives them back (it starts
    /// streaming once two are queued: min_buffers_needed).
    static func outputFromHeapBuffers(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-out", kernel: kernel)
            let format = try device.format(.videoOutput)
            let size = Int(format.planes[0].sizeImage)
            let heap = try DmaHeap("system", kernel: kernel)
            let first = try heap.allocate(length: size, name: "output-0")
            let second = try heap.allocate(length: size, name: "output-1")
            try first.write { $0.initializeMemory(as: UInt8.self, repeating: 0x40) }
            try second.write { $0.initializeMemory(as: UInt8.self, repeating: 0xc0) }
            let queue = try V4L2Queue(device: device, type: .videoOutput, memory: .dmabuf, count: 2)
            try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [first.fd], bytesUsed: [UInt32(size)])
            try queue.enqueue(BufferIndex(rawValue: 1), dmaBufs: [second.fd], bytesUsed: [UInt32(size)])
            try queue.start()
            let done = try #require(try queue.dequeue(waiting: .seconds(5)), "an output buffer came back within 5 s")
            #expect(done.index == 0 && !done.flags.contains(.error))
            try queue.release()
            try second.close()
            try first.close()
            try device.close()
        }
    }

    /// udmabuf into vivid (vb2-vmalloc maps the buffer with the exporter's vmap). On 6.1
    /// udmabuf has no vmap: QBUF fails with EFAULT (videobuf2-vmalloc.c:230 (6.1)
    /// vb2_vmalloc_map_dmabuf: dma_buf_vmap fails) and the error says why. From 6.2 it has
    /// one (udmabuf.c:79 (6.12) vmap_udmabuf): the buffer is queued and comes back filled with
    /// vivid's picture. Which one this kernel does is tried, not read from the release.
    static func udmabufIntoVivid(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let size = Int(try device.format(.videoCapture).planes[0].sizeImage)
            // Two buffers: vivid starts streaming once min_buffers_needed (2) are queued.
            let udmabuf = try UdmabufDevice(kernel: kernel)
            let length = (size + 4095) / 4096 * 4096
            let first = try udmabuf.create(from: try Memfd(kernel: kernel, name: "capture 0", length: length))
            let second = try udmabuf.create(from: try Memfd(kernel: kernel, name: "capture 1", length: length))
            try udmabuf.close()
            let queue = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 2)
            do {
                _ = try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [first.fd])
                _ = try queue.enqueue(BufferIndex(rawValue: 1), dmaBufs: [second.fd])
                print("udmabuf into vivid: queued (the kernel's udmabuf has vmap)")
                try queue.start()
                let done = try queue.dequeue(waiting: .seconds(10))
                try queue.stop()
                let index = try #require(done?.index, "a frame within 10 s")
                #expect(done?.flags.contains(.error) == false, "\(String(describing: done))")
                let painted =
                    try (index == 0 ? first.read { $0.contains { $0 != 0 } } : second.read { $0.contains { $0 != 0 } })
                #expect(painted, "vivid drew its picture into the udmabuf's memory")
            } catch let error as KernelError where error.errno == .EFAULT {
                print("udmabuf into vivid: refused at QBUF with EFAULT (the kernel's udmabuf has no vmap)")
                #expect(error.operation == "VIDIOC_QBUF")
                #expect(error.reason?.contains("vmap") == true, "\(error)")
            }
            try queue.release()
            try second.close()
            try first.close()
            try device.close()
        }
    }
}

/// The V4L2 nodes the V4L2 device tests need: vivid's (booted with vivid.n_devs=6, the third
/// on vb2-dma-contig).
enum V4L2Devices {
    static let names = (try? V4L2Device.nodes(kernel: LinuxKernel()).map(\.name)) ?? []
    static var available: Bool { names.contains("vivid-000-vid-cap") }
    static var skipReason: Comment {
        "needs the vivid driver's video nodes (found: \(names.isEmpty ? "none" : names.joined(separator: ", "))); see README.md, VM test rig"
    }
}

extension V4L2Cases {
    /// __verify_planes_array: fewer planes than the format has (more are allowed).
    static func tooFewPlanes(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let multi = try V4L2Device(name: "vivid-001-vid-cap", kernel: kernel)
            let multiQueue = try V4L2Queue(device: multi, type: .videoCaptureMultiplanar, memory: .mmap, count: 2)
            expectKernelError(.EINVAL) {
                _ = try kernel.v4l2QueueBuffer(
                    multi.fd,
                    V4L2BufferInfo(
                        index: 0, type: .videoCaptureMultiplanar, memory: .mmap,
                        planes: Array(repeating: V4L2Plane(), count: multiQueue.planeCount - 1)))
            }
            try multiQueue.release()
            try multi.close()
        }
    }

    /// REQBUFS(0) while an exported dma-buf is alive: vb2 on 6.1 reports orphaned-buffer
    /// support, frees the queue and leaves the dma-buf usable.
    static func exportedBuffersOutliveTheirQueue(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let queue = try V4L2Queue(device: device, type: .videoCapture, memory: .mmap, count: 2)
            #expect(queue.capabilities.contains(.orphanedBuffers))
            let exported = try queue.export(BufferIndex(rawValue: 0))
            try queue.release()
            try exported.write { $0.initializeMemory(as: UInt8.self, repeating: 0x5a) }
            #expect(try exported.read { $0.allSatisfy { $0 == 0x5a } })
            try exported.close()
            try device.close()
        }
    }
}

extension V4L2Cases {
    /// vim2m with dma-bufs on both queues: a heap buffer in, another heap buffer out, and the
    /// result is the input turned upside down (V4L2_CID_VFLIP), row for row.
    static func mem2memRoundTripThroughHeapBuffers(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vim2m", kernel: kernel)
            #expect(device.capability.deviceCaps.contains(.videoMem2Mem))
            let rgb24 = V4L2PixelFormat.rgb24, width: UInt32 = 320, height: UInt32 = 240
            let source = try device.setFormat(
                V4L2Format(type: .videoOutput, width: width, height: height, pixelFormat: rgb24))
            let result = try device.setFormat(
                V4L2Format(type: .videoCapture, width: width, height: height, pixelFormat: rgb24))
            #expect(source.planes[0].bytesPerLine == width * 3 && result.planes[0].sizeImage == width * height * 3)
            try device.setControl(V4L2Control.verticalFlip, 1)
            let pitch = Int(width) * 3, size = Int(source.planes[0].sizeImage)

            let heap = try DmaHeap("system", kernel: kernel)
            let input = try heap.allocate(length: size, name: "m2m-in")
            let output = try heap.allocate(length: size, name: "m2m-out")
            try input.write { view in
                for i in 0..<size { view[i] = UInt8(truncatingIfNeeded: i / pitch * 7 + i % pitch) }
            }
            let inQueue = try V4L2Queue(device: device, type: .videoOutput, memory: .dmabuf, count: 1)
            let outQueue = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 1)
            try inQueue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [input.fd], bytesUsed: [UInt32(size)])
            try outQueue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [output.fd])
            try inQueue.start()
            try outQueue.start()
            let done = try #require(try outQueue.dequeue(waiting: .seconds(5)), "vim2m produced a frame within 5 s")
            #expect(done.planes[0].bytesUsed == UInt32(size))
            #expect(try inQueue.dequeue(waiting: .seconds(5)) != nil, "the source buffer came back")
            let flipped = try input.read { source in
                try output.read { result in
                    (0..<Int(height)).allSatisfy { y in
                        result[(y * pitch)..<((y + 1) * pitch)].elementsEqual(
                            source[((Int(height) - 1 - y) * pitch)..<((Int(height) - y) * pitch)])
                    }
                }
            }
            #expect(flipped, "the capture is the output turned upside down")
            try outQueue.release()
            try inQueue.release()
            try output.close()
            try input.close()
            try device.close()
        }
    }
}

extension V4L2Cases {
    /// With vivid made deterministic, captured frames repeat byte for byte and start with the
    /// first colour bar (75% white).
    static func deterministicVividFramesRepeat(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            try device.makeVividDeterministic()
            #expect(try device.control(VividControl.osdTextMode) == VividControl.osdNone)
            #expect(try device.control(VividControl.horizontalMovement) == VividControl.noMovement)
            let format = try device.setFormat(
                V4L2Format(type: .videoCapture, width: 640, height: 360, pixelFormat: .rgb24))
            let size = Int(format.planes[0].sizeImage)
            let heap = try DmaHeap("system", kernel: kernel)
            let first = try heap.allocate(length: size), second = try heap.allocate(length: size)
            let queue = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 2)
            try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [first.fd])
            try queue.enqueue(BufferIndex(rawValue: 1), dmaBufs: [second.fd])
            try queue.start()
            #expect(try queue.dequeue(waiting: .seconds(5)) != nil)
            #expect(try queue.dequeue(waiting: .seconds(5)) != nil)
            let same = try first.read { a in try second.read { b in a.elementsEqual(b) } }
            #expect(same, "two frames of a still picture are identical")
            let topLeft = try first.read { Array($0.prefix(3)) }
            #expect(topLeft == [0xbf, 0xbf, 0xbf], "75% white: \(topLeft)")
            try queue.release()
            try second.close()
            try first.close()
            try device.close()
        }
    }
}

extension V4L2Cases {
    /// vivid's error injection: a start-streaming error leaves the buffers queued and the queue
    /// releasable; a DQBUF error marks one buffer V4L2_BUF_FLAG_ERROR and
    /// streaming goes on. Nothing is leaked either way.
    static func injectedErrorsTearDownCleanly(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let size = Int(try device.format(.videoCapture).planes[0].sizeImage)
            let heap = try DmaHeap("system", kernel: kernel)
            let buffers = [try heap.allocate(length: size).release(), try heap.allocate(length: size).release()]
            defer { for fd in buffers { try? kernel.close(fd) } }

            try device.setControl(VividControl.startStreamingError, 1)
            let failing = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 2)
            for (index, fd) in buffers.enumerated() {
                try failing.enqueue(BufferIndex(rawValue: UInt32(index)), dmaBufs: [fd])
            }
            expectKernelError(.EINVAL) { try failing.start() }
            // The driver gives its buffers back to vb2 as queued: ready for another STREAMON.
            let afterFailure = try failing.info(BufferIndex(rawValue: 0))
            #expect(afterFailure.flags.contains(.queued))
            try failing.release()

            let queue = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 2)
            for (index, fd) in buffers.enumerated() {
                try queue.enqueue(BufferIndex(rawValue: UInt32(index)), dmaBufs: [fd])
            }
            try queue.start()
            try device.setControl(VividControl.dequeueError, 1)
            var sawError = false
            for _ in 0..<6 where !sawError {
                let frame = try #require(try queue.dequeue(waiting: .seconds(5)))
                sawError = frame.flags.contains(.error)
                try queue.enqueue(BufferIndex(rawValue: frame.index), dmaBufs: [buffers[Int(frame.index)]])
            }
            #expect(sawError, "the injected DQBUF error marks a buffer")
            try queue.release()
            try device.close()
        }
    }
}

@Suite("V4L2 on the simulated kernel")
struct SimulatedV4L2Tests {
    @Test(arguments: SimulatedKernel.Version.allCases, V4L2Cases.shared)
    func shared(_ version: SimulatedKernel.Version, _ kernelCase: KernelCase) throws {
        try kernelCase.run(on: SimulatedKernel(version: version))
    }
    @Test(arguments: SimulatedKernel.Version.allCases, V4L2BadInputTable.rows)
    func badInput(_ version: SimulatedKernel.Version, _ row: V4L2BadInput) throws {
        try V4L2BadInputTable.check(row, on: SimulatedKernel(version: version))
    }
}

extension DeviceTests {
    @Suite("V4L2 on the real kernel", .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
    struct V4L2OnDevices {
        @Test(arguments: V4L2Cases.shared)
        func shared(_ kernelCase: KernelCase) throws { try kernelCase.run(on: LinuxKernel()) }
        @Test(arguments: V4L2BadInputTable.rows)
        func badInput(_ row: V4L2BadInput) throws { try V4L2BadInputTable.check(row, on: LinuxKernel()) }
    }
}
