import DmaBufKit
import Testing

/// V4L2 cases about formats and planes: multi-planar NV12M through EXPBUF and DMABUF,
/// data offsets, CREATE_BUFS, frame sizes and intervals, and libv4lconvert's view of the
/// captured pictures. Each runs on the real kernel in the VM and on the simulation.
enum V4L2FormatCases {
    /// The capture formats libv4lconvert is tried on: packed YUV, two-plane YUV, RGB.
    static let conversions: [(String, V4L2BufferType, V4L2PixelFormat)] = [
        ("vivid-000-vid-cap", .videoCapture, V4L2PixelFormat.yuyv),
        ("vivid-001-vid-cap", .videoCaptureMultiplanar, V4L2PixelFormat.nv12m),
        ("vivid-000-vid-cap", .videoCapture, V4L2PixelFormat.rgb24),
    ]

    /// Captures one frame into heap buffers (one per plane) and returns each plane's bytes.
    static func captureIntoHeap(
        _ device: borrowing V4L2Device, _ format: V4L2Format, kernel: any Kernel
    ) throws -> (V4L2BufferInfo, [[UInt8]]) {
        let heap = try DmaHeap("system", kernel: kernel)
        let planes = try format.planes.map { try heap.allocate(length: Int($0.sizeImage)).release() }
        defer { for fd in planes { try? kernel.close(fd) } }
        let queue = try V4L2Queue(device: device, type: format.type, memory: .dmabuf, count: 2)
        try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: planes)
        // vivid starts once two buffers are queued: the second takes the same dma-bufs.
        try queue.enqueue(BufferIndex(rawValue: 1), dmaBufs: planes)
        try queue.start()
        let frame = try #require(try queue.dequeue(waiting: .seconds(5)), "a frame within 5 s")
        try queue.release()
        let bytes = try zip(planes, format.planes).map { fd, plane in
            let view = DmaBuf(
                OwnedDescriptor(try kernel.duplicate(fd), kernel: kernel, path: "plane"), length: Int(plane.sizeImage))
            let bytes = try view.read { Array($0) }
            try view.close()
            return bytes
        }
        return (frame, bytes)
    }

    /// vivid's multi-planar instance in NV12M: two planes per buffer. MMAP buffers exported
    /// plane by plane show what the MMAP views show; DMABUF buffers (two heap buffers each)
    /// get the same picture, byte for byte.
    static func nv12mPlanesExportAndImport(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-001-vid-cap", kernel: kernel)
            try device.makeVividDeterministic()
            let type = V4L2BufferType.videoCaptureMultiplanar
            #expect(try device.formats(type).contains(V4L2PixelFormat.nv12m))
            let format = try device.setFormat(
                V4L2Format(
                    type: type, width: 640, height: 360, pixelFormat: V4L2PixelFormat.nv12m, planes: [.init(), .init()])
            )
            try #require(format.pixelFormat == V4L2PixelFormat.nv12m && format.planes.count == 2)
            #expect(format.planes[0].sizeImage == 640 * 360 && format.planes[1].sizeImage == 640 * 180)

            let queue = try V4L2Queue(device: device, type: type, memory: .mmap, count: 2)
            #expect(queue.planeCount == 2)
            var mapped: [[UnsafeMutableRawBufferPointer]] = []
            var exported: [[FileDescriptorNumber]] = []
            for index in queue.indices {
                let info = try queue.info(index)
                #expect(
                    info.planes.count == 2 && Set(info.planes.map(\.memoryOffset)).count == 2,
                    "each plane has its own offset")
                mapped.append(
                    try info.planes.map { plane in
                        let base = try kernel.mmap(
                            device.fd, length: Int(plane.length), protection: [.read], shared: true,
                            offset: UInt64(plane.memoryOffset))
                        return UnsafeMutableRawBufferPointer(start: base, count: Int(plane.length))
                    })
                exported.append(try (0..<2).map { try queue.export(index, plane: $0).release() })
                try queue.enqueue(index)
            }
            try queue.start()
            let frame = try #require(try queue.dequeue(waiting: .seconds(5)), "a frame within 5 s")
            #expect(frame.planes.map(\.bytesUsed) == format.planes.map(\.sizeImage))
            var mmapPicture: [[UInt8]] = []
            for plane in 0..<2 {
                let used = Int(frame.planes[plane].bytesUsed)
                let view = DmaBuf(
                    OwnedDescriptor(
                        try kernel.duplicate(exported[Int(frame.index)][plane]), kernel: kernel, path: "EXPBUF"),
                    length: used)
                let same = try view.read { $0.prefix(used).elementsEqual(mapped[Int(frame.index)][plane].prefix(used)) }
                #expect(same, "plane \(plane): the exported dma-buf differs from the MMAP view")
                mmapPicture.append(Array(mapped[Int(frame.index)][plane].prefix(used)))
                try view.close()
            }
            try queue.release()  // vb2 orphans the exported buffers
            for plane in mapped.joined() { try kernel.munmap(plane.baseAddress!, length: plane.count) }
            for fd in exported.joined() { try kernel.close(fd) }

            let (imported, dmaBufPicture) = try captureIntoHeap(device, format, kernel: kernel)
            #expect(imported.planes.map(\.bytesUsed) == format.planes.map(\.sizeImage))
            #expect(dmaBufPicture == mmapPicture, "a still picture is the same through MMAP and DMABUF planes")
            try device.close()
        }
    }

    /// Multi-planar output with data offsets: the payload must cover the offset plus the
    /// picture (vivid's buf_prepare) and the offset must lie inside the payload (vb2's
    /// __verify_length); vb2 hands the offsets back at DQBUF.
    static func outputPlanesWithDataOffsets(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-001-vid-out", kernel: kernel)
            let type = V4L2BufferType.videoOutputMultiplanar
            let format = try device.setFormat(
                V4L2Format(
                    type: type, width: 640, height: 360, pixelFormat: V4L2PixelFormat.nv12m, planes: [.init(), .init()])
            )
            try #require(format.planes.count == 2)
            let offset: UInt32 = 4096
            let sizes = format.planes.map(\.sizeImage)
            let heap = try DmaHeap("system", kernel: kernel)
            let planes = try sizes.map { try heap.allocate(length: Int($0 + offset)).release() }
            defer { for fd in planes { try? kernel.close(fd) } }
            let queue = try V4L2Queue(device: device, type: type, memory: .dmabuf, count: 2)
            let first = BufferIndex(rawValue: 0), second = BufferIndex(rawValue: 1)
            expectKernelError(.EINVAL) {
                try queue.enqueue(first, dmaBufs: planes, bytesUsed: [offset, offset], dataOffsets: [offset, offset])
            }
            expectKernelError(.EINVAL) {
                try queue.enqueue(first, dmaBufs: planes, bytesUsed: sizes, dataOffsets: [offset, offset])
            }
            let payload = sizes.map { $0 + offset }
            try queue.enqueue(first, dmaBufs: planes, bytesUsed: payload, dataOffsets: [offset, offset])
            try queue.enqueue(second, dmaBufs: planes, bytesUsed: payload, dataOffsets: [offset, offset])
            try queue.start()
            let done = try #require(try queue.dequeue(waiting: .seconds(5)), "an output buffer came back within 5 s")
            #expect(done.planes.map(\.dataOffset) == [offset, offset])
            #expect(done.planes.map(\.bytesUsed) == payload)
            try queue.release()
            try device.close()
        }
    }

    /// CREATE_BUFS adds buffers after REQBUFS's, each as large as asked; smaller than the
    /// format needs, or another memory type than the queue's, is EINVAL. All of them capture.
    static func createBuffersAddsLargerBuffers(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let format = try device.format(.videoCapture)
            var queue = try V4L2Queue(device: device, type: .videoCapture, memory: .mmap, count: 2)
            var larger = format
            larger.planes[0].sizeImage *= 2
            let added = try queue.createBuffers(2, format: larger)
            #expect(added.map(\.rawValue) == [2, 3] && queue.count == 4)
            #expect(try queue.info(added[0]).planes[0].length >= larger.planes[0].sizeImage)
            var smaller = format
            smaller.planes[0].sizeImage /= 2
            expectKernelError(.EINVAL) { _ = try queue.createBuffers(1, format: smaller) }
            expectKernelError(.EINVAL) {
                _ = try kernel.v4l2CreateBuffers(device.fd, memory: .dmabuf, format: format, count: 1)
            }
            #expect(queue.count == 4)
            for index in queue.indices { try queue.enqueue(index) }
            try queue.start()
            var seen: Set<UInt32> = []
            for _ in 0..<4 {
                let frame = try #require(try queue.dequeue(waiting: .seconds(5)), "a frame within 5 s")
                #expect(frame.planes[0].bytesUsed == format.planes[0].sizeImage)
                seen.insert(frame.index)
            }
            #expect(seen == [0, 1, 2, 3], "every buffer, created or requested, was filled")
            try queue.release()
            try device.close()
        }
    }

    /// vivid's webcam intervals as each kernel defines them: how many it offers at 640x360 and
    /// at 1920x1080, and the fastest at 640x360. A kernel must match one row as a whole.
    static let vividIntervalTables:
        [(kernel: String, at360p: Int, at1080p: Int, fastest: V4L2Fraction, source: String)] =
            [
                (
                    "6.1", 10, 4, V4L2Fraction(1, 40),
                    "vivid-vid-cap.c:1939 (6.1) vidioc_enum_frameintervals: index >= 2 * (VIVID_WEBCAM_SIZES - i)"
                ),
                (
                    "6.12", 13, 9, V4L2Fraction(1, 120),
                    "vivid-vid-cap.c:1723 (6.12) vidioc_enum_frameintervals: index >= webcam_ival_count(dev, i)"
                ),
            ]

    /// vivid's webcam input: discrete sizes, for each the times per frame it offers (the table
    /// differs between kernels: one of `vividIntervalTables`, found by enumerating, not by the
    /// release); S_PARM picks the first offered interval not longer than the one asked, so
    /// asking for 1/1000 gives the fastest that ENUM_FRAMEINTERVALS listed. vim2m: one size range.
    static func frameSizesAndIntervals(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let yuyv = V4L2PixelFormat.yuyv
            let sizes = try device.frameSizes(yuyv)
            #expect(
                sizes.contains(.discrete(width: 640, height: 360))
                    && sizes.contains(.discrete(width: 1920, height: 1080)), "\(sizes)")
            #expect(
                try device.frameSizes(V4L2PixelFormat(rawValue: 0x2020_2020)).isEmpty,
                "no sizes for a format the node lacks")
            let intervals = try device.frameIntervals(yuyv, width: 640, height: 360)
            let at1080p = try device.frameIntervals(yuyv, width: 1920, height: 1080)
            let table = vividIntervalTables.first {
                $0.at360p == intervals.count && $0.at1080p == at1080p.count && intervals.last == .discrete($0.fastest)
            }
            #expect(
                table != nil,
                "640x360 offers \(intervals.count) (fastest \(String(describing: intervals.last))), 1920x1080 \(at1080p.count): no kernel's table: \(vividIntervalTables.map(\.source))"
            )
            if let table { print("vivid's webcam intervals are \(table.kernel)'s (\(table.source))") }
            #expect(
                intervals.first == .discrete(V4L2Fraction(1, 1)) && intervals.contains(.discrete(V4L2Fraction(1, 30))))
            #expect(
                try device.frameIntervals(yuyv, width: 641, height: 360).isEmpty, "no intervals for a size it lacks")

            try device.setFormat(V4L2Format(type: .videoCapture, width: 640, height: 360, pixelFormat: yuyv))
            let before = try device.frameInterval(.videoCapture)
            #expect(try device.setFrameInterval(.videoCapture, V4L2Fraction(1, 30)) == V4L2Fraction(1, 30))
            #expect(try device.frameInterval(.videoCapture) == V4L2Fraction(1, 30))
            let fastest = try device.setFrameInterval(.videoCapture, V4L2Fraction(1, 1000))
            #expect(
                intervals.last == .discrete(fastest),
                "S_PARM 1/1000 gives the fastest interval ENUM_FRAMEINTERVALS listed at 640x360: \(fastest) vs \(String(describing: intervals.last))"
            )
            try device.setFrameInterval(.videoCapture, before)
            try device.close()

            let m2m = try V4L2Device(name: "vim2m", kernel: kernel)
            #expect(
                try m2m.frameSizes(V4L2PixelFormat.rgb24) == [
                    .stepwise(width: 32...640, widthStep: 2, height: 32...480, heightStep: 1)
                ])
            try m2m.close()
        }
    }

    /// libv4lconvert turns a captured frame of vivid's 75% bars into RGB24 whatever the
    /// capture format: the middle of each bar has the bar's primaries (channel above half
    /// or not): white, yellow, cyan, green, magenta, red, blue, black.
    static func convertedFramesShowTheBars(
        _ kernel: any Kernel, _ node: String, _ type: V4L2BufferType, _ pixelFormat: V4L2PixelFormat
    ) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: node, kernel: kernel)
            try device.makeVividDeterministic()
            let planes = pixelFormat == V4L2PixelFormat.nv12m ? 2 : 1
            let format = try device.setFormat(
                V4L2Format(
                    type: type, width: 640, height: 360, pixelFormat: pixelFormat,
                    planes: Array(repeating: .init(), count: planes)))
            try #require(format.pixelFormat == pixelFormat)
            let (_, bytes) = try captureIntoHeap(device, format, kernel: kernel)
            try device.close()
            let rgb = try FrameConverter().rgb24(bytes, format: format)
            let width = Int(format.width), row = Int(format.height) / 2
            let bars = (0..<8).map { bar in
                let pixel = (row * width + (2 * bar + 1) * width / 16) * 3
                return (rgb[pixel] > 128, rgb[pixel + 1] > 128, rgb[pixel + 2] > 128)
            }
            let expected = [
                (true, true, true), (true, true, false), (false, true, true), (false, true, false),
                (true, false, true), (true, false, false), (false, false, true), (false, false, false),
            ]
            #expect(bars.elementsEqual(expected, by: ==), "\(pixelFormat) as RGB: \(bars)")
        }
    }

    /// vivid's disconnect mid-stream: every ioctl then fails with ENODEV (DQBUF included, after
    /// poll reports the hang-up), releasing the queue says the device is gone, closing the node
    /// frees its buffers, and vivid comes back once its last user has closed.
    static func disconnectMidStream(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let size = Int(try device.format(.videoCapture).planes[0].sizeImage)
            let heap = try DmaHeap("system", kernel: kernel)
            let first = try heap.allocate(length: size), second = try heap.allocate(length: size)
            let queue = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 2)
            try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [first.fd])
            try queue.enqueue(BufferIndex(rawValue: 1), dmaBufs: [second.fd])
            try queue.start()
            #expect(try queue.dequeue(waiting: .seconds(5)) != nil)
            try device.setControl(VividControl.disconnect, 1)
            let gone = expectKernelError(.ENODEV) { _ = try queue.dequeue(waiting: .seconds(5)) }
            #expect(gone?.operation == "VIDIOC_DQBUF")
            do {
                try queue.release()
                Issue.record("releasing a disconnected queue succeeded")
            } catch let error as KernelError {
                #expect(error.errno == .ENODEV && error.reason?.contains("disconnected") == true, "\(error)")
            }
            try device.close()
            // The heap buffers vivid held are the application's again, intact.
            #expect(try first.read { $0.count } >= size)
            try second.close()
            try first.close()
            let again = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let fresh = try V4L2Queue(device: again, type: .videoCapture, memory: .mmap, count: 2)
            try fresh.release()
            try again.close()
        }
    }
}
