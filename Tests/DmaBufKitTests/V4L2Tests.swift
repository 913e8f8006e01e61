import DmaBufKit
import Testing

extension DeviceTests {
@Suite("V4L2 on the real kernel", .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
struct V4L2OnDevices {
    /// vivid capture with MMAP buffers, each exported with EXPBUF: the dma-buf's CPU view
    /// (under DMA_BUF_IOCTL_SYNC) equals the MMAP view of the same buffer, frame after frame.
    @Test func exportedBuffersShowTheCapturedFrames() throws {
        let kernel = LinuxKernel()
        try expectNoLeaks(kernel) {
            let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            #expect(device.capability.driver == "vivid")
            let type = V4L2BufferType.videoCapture
            #expect(try device.formats(type).contains(0x3342_4752))  // 'RGB3'
            // vivid's webcam input has discrete sizes: take the one it settles on.
            let format = try device.setFormat(V4L2Format(type: type, width: 640, height: 360, pixelFormat: 0x3342_4752))
            #expect(format.pixelFormat == 0x3342_4752 && format.planes[0].bytesPerLine >= format.width * 3)

            let fd = device.fd
            let granted = try kernel.v4l2RequestBuffers(fd, type: type, memory: .mmap, count: 4)
            #expect(granted.count >= 2)
            var mappings: [UnsafeMutableRawBufferPointer] = []
            var exported: [FileDescriptorNumber] = []
            for index in 0..<granted.count {
                let info = try kernel.v4l2QueryBuffer(fd, type: type, memory: .mmap, index: index, planes: 1)
                let length = Int(info.planes[0].length)
                let base = try kernel.mmap(fd, length: length, protection: [.read], shared: true, offset: UInt64(info.planes[0].memoryOffset))
                mappings.append(UnsafeMutableRawBufferPointer(start: base, count: length))
                exported.append(try kernel.v4l2ExportBuffer(fd, type: type, index: index, plane: 0, flags: UInt32(OpenFlags.closeOnExec.rawValue | OpenFlags.readWrite.rawValue)))
                _ = try kernel.v4l2QueueBuffer(fd, V4L2BufferInfo(index: index, type: type, memory: .mmap, planes: [V4L2Plane()]))
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
                let shared = DmaBuf(OwnedDescriptor(try kernel.duplicate(exported[Int(frame.index)]), kernel: kernel, path: "EXPBUF"), length: mappings[Int(frame.index)].count)
                let same = try shared.read { view in view.prefix(used).elementsEqual(mappings[Int(frame.index)].prefix(used)) }
                #expect(same, "frame \(frame.sequence): the exported dma-buf differs from the MMAP view")
                try shared.close()
                _ = try kernel.v4l2QueueBuffer(fd, V4L2BufferInfo(index: frame.index, type: type, memory: .mmap, planes: [V4L2Plane()]))
            }
            // Frames may be dropped here (a debug build under TCG is slow), never reordered.
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count, "sequence numbers: \(sequences)")
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
}

/// The V4L2 nodes the V4L2 device tests need: vivid's (booted with vivid.n_devs=2).
enum V4L2Devices {
    static let names = (try? V4L2Device.nodes(kernel: LinuxKernel()).map(\.name)) ?? []
    static var available: Bool { names.contains("vivid-000-vid-cap") }
    static var skipReason: Comment { "needs the vivid driver's video nodes (found: \(names.isEmpty ? "none" : names.joined(separator: ", "))); see README.md, VM test rig" }
}
