import DmaBufKit
import Testing

/// Bad V4L2 inputs on vivid's capture node and the errno Linux 6.1 and 6.12 give, each citing
/// the line of videobuf2 (or vivid) that answers on each. Every row runs on the simulated and on the real
/// kernel, through the raw `Kernel` interface so the bad values reach the kernel unchanged.
struct V4L2BadInput: CustomTestStringConvertible, Sendable {
    let name: String
    let errno: Errno
    /// The 6.1 source line that answers, and the 6.12 one where it moved or changed.
    let source: String
    var linux6_12: String? = nil
    /// The capture node the row runs on: vivid instance 002 is the one on vb2-dma-contig.
    var node = "vivid-000-vid-cap"
    let run: @Sendable (V4L2Fixture) throws(KernelError) -> Void
    var testDescription: String { "\(name) → \(errno.name)" }
    var citation: String { linux6_12.map { "6.1 \(source); 6.12 \($0)" } ?? source }
}

/// A vivid capture node opened non-blocking, the size of one frame, and the dma-bufs and memfds
/// of the dma-buf table's fixture. Closing the node frees its queue, however a row left it.
struct V4L2Fixture {
    let kernel: any Kernel
    let path: String
    let video: FileDescriptorNumber
    let sizeImage: UInt32
    let files: BadInputFixture

    /// REQBUFS on the capture queue.
    func request(_ memory: V4L2Memory, count: UInt32 = 2) throws(KernelError) {
        _ = try kernel.v4l2RequestBuffers(video, type: .videoCapture, memory: memory, count: count)
    }

    /// A capture buffer naming `fd` as its one plane.
    func dmaBufBuffer(_ index: UInt32 = 0, fd: FileDescriptorNumber) -> V4L2BufferInfo {
        V4L2BufferInfo(index: index, type: .videoCapture, memory: .dmabuf, planes: [V4L2Plane(fd: fd.rawValue)])
    }

    /// An encoder streaming on both queues (MMAP, 2 buffers each), with `queuedOutputs` raw
    /// frames and `queuedCaptures` empty buffers queued before STREAMON.
    func streamEncoder(queuedOutputs: UInt32, queuedCaptures: UInt32 = 2) throws(KernelError) {
        for (type, queued) in [(V4L2BufferType.videoCapture, queuedCaptures), (.videoOutput, queuedOutputs)] {
            _ = try kernel.v4l2RequestBuffers(video, type: type, memory: .mmap, count: 2)
            for index in 0..<queued {
                _ = try kernel.v4l2QueueBuffer(
                    video, V4L2BufferInfo(index: index, type: type, memory: .mmap, planes: [V4L2Plane()]))
            }
        }
        try kernel.v4l2Stream(video, type: .videoCapture, on: true)
        try kernel.v4l2Stream(video, type: .videoOutput, on: true)
    }

    /// A dma-buf large enough for a frame.
    func frameBuffer() throws(KernelError) -> FileDescriptorNumber {
        let page = UInt64(kernel.pageSize)
        return try files.dmaBuf(pages: (UInt64(sizeImage) + page - 1) / page)
    }

    static func with(_ kernel: any Kernel, node: String, _ body: (V4L2Fixture) throws -> Void) throws {
        let path = try #require(try V4L2Device.nodes(kernel: kernel).first { $0.name == node }?.path, "no \(node)")
        let video = try kernel.open(path, flags: [.readWrite, .nonBlocking, .closeOnExec])
        let files = BadInputFixture(kernel: kernel)
        defer {
            files.closeAll()
            try? kernel.close(video)
        }
        let sizeImage = try kernel.v4l2GetFormat(video, type: .videoCapture).planes[0].sizeImage
        try body(V4L2Fixture(kernel: kernel, path: path, video: video, sizeImage: sizeImage, files: files))
    }
}

enum V4L2BadInputTable {
    static let core = "videobuf2-core.c"
    static let v4l2 = "videobuf2-v4l2.c"
    static let contig = "videobuf2-dma-contig.c"
    static let rows: [V4L2BadInput] = [
        V4L2BadInput(
            name: "S_INPUT past the last input", errno: .EINVAL, source: "vivid-vid-cap.c:1417 vidioc_s_input",
            linux6_12: "vivid-vid-cap.c:1170 vidioc_s_input"
        ) { f throws(KernelError) in
            try f.kernel.v4l2SetConnector(f.video, .input, index: 99)
        },
        V4L2BadInput(
            name: "S_INPUT to another input while buffers exist", errno: .EBUSY,
            source: "vivid-vid-cap.c:1425 vidioc_s_input: vb2_is_busy",
            linux6_12: "vivid-vid-cap.c:1178 vidioc_s_input: vb2_is_busy"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            try f.kernel.v4l2SetConnector(f.video, .input, index: 3)
        },
        V4L2BadInput(
            name: "ENUMINPUT past the last input", errno: .EINVAL, source: "vivid-vid-cap.c:1339 vidioc_enum_input",
            linux6_12: "vivid-vid-cap.c:1092 vidioc_enum_input"
        ) { f throws(KernelError) in
            _ = try f.kernel.v4l2EnumConnector(f.video, .input, index: 4)
        },
        V4L2BadInput(
            name: "G_DV_TIMINGS on the webcam input", errno: .ENODATA,
            source: "vivid-vid-common.c:991 vidioc_g_dv_timings: !vivid_is_hdmi_cap",
            linux6_12: "vivid-vid-common.c:1032 vidioc_g_dv_timings: !vivid_is_hdmi_cap"
        ) { f throws(KernelError) in
            _ = try f.kernel.v4l2GetDVTimingsSize(f.video)
        },
        // A udmabuf whose first page comes again second is never contiguous, whatever the
        // allocator placed where: a deterministic scattered buffer.
        V4L2BadInput(
            name: "QBUF DMABUF of scattered pages on a dma-contig node", errno: .EFAULT,
            source: "\(contig):724 vb2_dc_map_dmabuf: contiguous chunk is too small",
            linux6_12: "\(contig):717 vb2_dc_map_dmabuf: contiguous chunk is too small", node: "vivid-002-vid-cap"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            let pages = (UInt64(f.sizeImage) + f.files.page - 1) / f.files.page
            let memfd = try f.files.memfd(pages: pages)
            let scattered = f.files.own(
                try f.kernel.udmabufCreateList(
                    device: try f.files.udmabuf(), flags: [],
                    items: [
                        UdmabufItem(memfd: memfd, offset: 0, size: f.files.page),
                        UdmabufItem(memfd: memfd, offset: 0, size: pages * f.files.page),
                    ]))
            _ = try f.kernel.v4l2QueueBuffer(f.video, f.dmaBufBuffer(fd: scattered))
        },
        V4L2BadInput(
            name: "QBUF DMABUF of a contiguous buffer smaller than the plane on a dma-contig node", errno: .EINVAL,
            source: "\(core):1291 __prepare_dmabuf: length < min_length",
            linux6_12: "\(core):1413 __prepare_dmabuf: length < min_length", node: "vivid-002-vid-cap"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2QueueBuffer(f.video, f.dmaBufBuffer(fd: try f.files.dmaBuf(heap: "reserved")))
        },
        V4L2BadInput(
            name: "QBUF DMABUF of a memfd", errno: .EINVAL, source: "\(core):1280 __prepare_dmabuf: dma_buf_get fails",
            linux6_12: "\(core):1398 __prepare_dmabuf: dma_buf_get fails"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2QueueBuffer(f.video, f.dmaBufBuffer(fd: try f.files.memfd()))
        },
        V4L2BadInput(
            name: "QBUF DMABUF of an fd that is not open", errno: .EINVAL,
            source: "\(core):1280 __prepare_dmabuf: dma_buf_get fails",
            linux6_12: "\(core):1398 __prepare_dmabuf: dma_buf_get fails"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2QueueBuffer(f.video, f.dmaBufBuffer(fd: FileDescriptorNumber(rawValue: 9999)))
        },
        V4L2BadInput(
            name: "QBUF DMABUF smaller than the plane", errno: .EINVAL,
            source: "\(core):1291 __prepare_dmabuf: length < min_length",
            linux6_12: "\(core):1413 __prepare_dmabuf: length < min_length"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2QueueBuffer(f.video, f.dmaBufBuffer(fd: try f.files.dmaBuf()))
        },
        V4L2BadInput(
            name: "QBUF an index beyond the buffers", errno: .EINVAL,
            source: "\(v4l2):381 vb2_queue_or_prepare_buf: index >= num_buffers",
            linux6_12: "\(v4l2):822 vb2_qbuf: vb2_get_buffer(q, b->index) == NULL"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2QueueBuffer(f.video, f.dmaBufBuffer(2, fd: try f.frameBuffer()))
        },
        V4L2BadInput(
            name: "QBUF an MMAP buffer on a DMABUF queue", errno: .EINVAL,
            source: "\(v4l2):392 vb2_queue_or_prepare_buf: memory != q->memory",
            linux6_12: "\(v4l2):380 vb2_queue_or_prepare_buf: memory != q->memory"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2QueueBuffer(
                f.video, V4L2BufferInfo(index: 0, type: .videoCapture, memory: .mmap, planes: [V4L2Plane()]))
        },
        V4L2BadInput(
            name: "QBUF a buffer already queued", errno: .EINVAL,
            source: "\(core):1747 vb2_core_qbuf: state is not DEQUEUED or PREPARED",
            linux6_12: "\(core):1924 vb2_core_qbuf: state is not DEQUEUED or PREPARED"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            let buffer = f.dmaBufBuffer(fd: try f.frameBuffer())
            _ = try f.kernel.v4l2QueueBuffer(f.video, buffer)
            _ = try f.kernel.v4l2QueueBuffer(f.video, buffer)
        },
        V4L2BadInput(
            name: "DQBUF before STREAMON", errno: .EINVAL, source: "\(core):1830 __vb2_wait_for_done_vb: !q->streaming",
            linux6_12: "\(core):2007 __vb2_wait_for_done_vb: !q->streaming"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = try f.kernel.v4l2DequeueBuffer(f.video, type: .videoCapture, memory: .dmabuf, planes: 1)
        },
        V4L2BadInput(
            name: "STREAMON without buffers", errno: .EINVAL, source: "\(core):2129 vb2_core_streamon: !q->num_buffers",
            linux6_12: "\(core):2321 vb2_core_streamon: !q_num_bufs"
        ) { f throws(KernelError) in
            try f.kernel.v4l2Stream(f.video, type: .videoCapture, on: true)
        },
        V4L2BadInput(
            name: "REQBUFS while streaming", errno: .EBUSY, source: "\(core):772 vb2_core_reqbufs: q->streaming",
            linux6_12: "\(core):883 vb2_core_reqbufs: q->streaming"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            try f.kernel.v4l2Stream(f.video, type: .videoCapture, on: true)
            try f.request(.mmap, count: 4)
        },
        V4L2BadInput(
            name: "REQBUFS from a second open while the first owns the queue", errno: .EBUSY,
            source: "\(v4l2):993 vb2_ioctl_reqbufs: vb2_queue_is_busy",
            linux6_12: "\(v4l2):1039 vb2_ioctl_reqbufs: vb2_queue_is_busy"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            let other = f.files.own(try f.kernel.open(f.path, flags: [.readWrite, .nonBlocking, .closeOnExec]))
            _ = try f.kernel.v4l2RequestBuffers(other, type: .videoCapture, memory: .mmap, count: 2)
        },
        V4L2BadInput(
            name: "S_FMT while buffers are allocated", errno: .EBUSY,
            source: "vivid-vid-cap.c:712 vivid_s_fmt_vid_cap: vb2_is_busy",
            linux6_12: "vivid-vid-cap.c:703 vivid_s_fmt_vid_cap: vb2_is_busy"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            var format = try f.kernel.v4l2GetFormat(f.video, type: .videoCapture)
            format.width = format.width == 640 ? 320 : 640
            _ = try f.kernel.v4l2SetFormat(f.video, format, tryOnly: false)
        },
        V4L2BadInput(
            name: "mmap of a DMABUF queue", errno: .EINVAL,
            source: "\(core):2208 __find_plane_by_offset: memory != MMAP",
            linux6_12: "\(core):2404 __find_plane_by_offset: memory != MMAP"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            try f.files.map(f.video, length: Int(f.sizeImage), protection: [.read])
        },
        V4L2BadInput(
            name: "EXPBUF on a DMABUF queue", errno: .EINVAL, source: "\(core):2246 vb2_core_expbuf: memory != MMAP",
            linux6_12: "\(core):2434 vb2_core_expbuf: memory != MMAP"
        ) { f throws(KernelError) in
            try f.request(.dmabuf)
            _ = f.files.own(
                try f.kernel.v4l2ExportBuffer(f.video, type: .videoCapture, index: 0, plane: 0, flags: [.closeOnExec]))
        },
        V4L2BadInput(
            name: "EXPBUF with O_NONBLOCK", errno: .EINVAL,
            source: "\(core):2256 vb2_core_expbuf: flags beyond O_CLOEXEC | O_ACCMODE",
            linux6_12: "\(core):2444 vb2_core_expbuf: flags beyond O_CLOEXEC | O_ACCMODE"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            _ = f.files.own(
                try f.kernel.v4l2ExportBuffer(
                    f.video, type: .videoCapture, index: 0, plane: 0, flags: [.closeOnExec, .nonBlocking]))
        },
        V4L2BadInput(
            name: "EXPBUF an index beyond the buffers", errno: .EINVAL,
            source: "\(core):2266 vb2_core_expbuf: index >= num_buffers",
            linux6_12: "\(v4l2):893 vb2_expbuf: vb2_get_buffer(q, eb->index) == NULL"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            _ = f.files.own(
                try f.kernel.v4l2ExportBuffer(f.video, type: .videoCapture, index: 2, plane: 0, flags: [.closeOnExec]))
        },
        V4L2BadInput(
            name: "EXPBUF a plane beyond the buffer's", errno: .EINVAL,
            source: "\(core):2273 vb2_core_expbuf: plane >= num_planes",
            linux6_12: "\(core):2454 vb2_core_expbuf: plane >= num_planes"
        ) { f throws(KernelError) in
            try f.request(.mmap)
            _ = f.files.own(
                try f.kernel.v4l2ExportBuffer(f.video, type: .videoCapture, index: 0, plane: 1, flags: [.closeOnExec]))
        },
        // A stateful codec's protocol (dev-encoder.rst, dev-decoder.rst) on vicodec.
        V4L2BadInput(
            name: "DQBUF on an encoder's CAPTURE after its LAST buffer", errno: .EPIPE,
            source: "\(core):1841 __vb2_wait_for_done_vb: last_buffer_dequeued",
            linux6_12: "\(core):2018 __vb2_wait_for_done_vb: last_buffer_dequeued", node: "stateful-encoder"
        ) { f throws(KernelError) in
            try f.streamEncoder(queuedOutputs: 0)
            // Nothing queued to encode: STOP makes the next CAPTURE buffer the last, empty.
            try f.kernel.v4l2CodecCommand(f.video, .encoder, .stop)
            let last = try f.kernel.v4l2DequeueBuffer(f.video, type: .videoCapture, memory: .mmap, planes: 1)
            #expect(last?.flags.contains(.last) == true, "the drain's buffer carries V4L2_BUF_FLAG_LAST")
            _ = try f.kernel.v4l2DequeueBuffer(f.video, type: .videoCapture, memory: .mmap, planes: 1)
        },
        V4L2BadInput(
            name: "a second STOP while the encoder drains", errno: .EBUSY,
            source: "v4l2-mem2mem.c:649 v4l2_update_last_buf_state: is_draining",
            linux6_12: "v4l2-mem2mem.c:652 v4l2_update_last_buf_state: is_draining", node: "stateful-encoder"
        ) { f throws(KernelError) in
            // A frame queued and no CAPTURE buffer to encode it into: the drain cannot end.
            try f.streamEncoder(queuedOutputs: 1, queuedCaptures: 0)
            try f.kernel.v4l2CodecCommand(f.video, .encoder, .stop)
            try f.kernel.v4l2CodecCommand(f.video, .encoder, .stop)
        },
        V4L2BadInput(
            name: "ENCODER_CMD on the decoder", errno: .ENOTTY,
            source: "vicodec-core.c:2052 register_instance: v4l2_disable_ioctl",
            linux6_12: "vicodec-core.c:2069 register_instance: v4l2_disable_ioctl", node: "stateful-decoder"
        ) { f throws(KernelError) in
            try f.kernel.v4l2CodecCommand(f.video, .encoder, .stop)
        },
        V4L2BadInput(
            name: "SUBSCRIBE_EVENT source change on the encoder", errno: .EINVAL,
            source: "vicodec-core.c:1302 vicodec_subscribe_event: is_enc",
            linux6_12: "vicodec-core.c:1316 vicodec_subscribe_event: is_enc", node: "stateful-encoder"
        ) { f throws(KernelError) in
            try f.kernel.v4l2SubscribeEvent(f.video, .sourceChange)
        },
    ]

    /// Runs one row: the errno must match, and no descriptor or mapping may be left.
    static func check(_ row: V4L2BadInput, on kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            try V4L2Fixture.with(kernel, node: row.node) { fixture in
                expectKernelError(row.errno, because: row.citation) { () throws(KernelError) in try row.run(fixture) }
            }
        }
    }
}
