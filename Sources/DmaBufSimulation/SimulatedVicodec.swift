import DmaBufKernel
import Foundation

/// vicodec's stateful encoder and decoder (drivers/media/test-drivers/vicodec) as the model has
/// them: the protocol of Documentation/userspace-api/media/v4l/dev-encoder.rst and
/// dev-decoder.rst with the errnos of v4l2-mem2mem and vb2 (STOP drains and flags the last
/// buffer; DQBUF after it is EPIPE; the decoder's first OUTPUT buffer, queued before CAPTURE
/// streams, sends the source change), but not FWHT: its "compressed" frame is a stand-in, a
/// 44-byte header like FWHT's (magic, size) and the picture's B, G, R with the low 2 bits of
/// each dropped. Lossy, so the round trip's PSNR is finite (about 46 dB), never byte-exact.
struct SimulatedVicodec {
    unowned let kernel: SimulatedKernel

    static let headerSize = 44
    static let magic: [UInt8] = [0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff]
    /// vicodec's MIN_WIDTH…MAX_WIDTH, MIN_HEIGHT…MAX_HEIGHT.
    static let widths: ClosedRange<UInt32> = 640...4096
    static let heights: ClosedRange<UInt32> = 360...2160

    /// What vicodec's v4l2_m2m context keeps of the drain and the stream (one per open).
    final class State {
        var isDraining = false
        var hasStopped = false
        /// The OUTPUT buffer whose result is the drain's last.
        var lastSource: SimulatedVideoBuffer?
        /// STOP came with no CAPTURE buffer queued: the next one queued is the last.
        var nextBufferIsLast = false
        /// vb2's last_buffer_dequeued on CAPTURE: DQBUF is EPIPE until STREAMOFF or START.
        var lastBufferDequeued = false
        var subscriptions: Set<UInt32> = []
        var events: [V4L2Event] = []
        var eventSequence: UInt32 = 0
        /// Decoder: the first source change was sent (from buf_queue, CAPTURE not streaming).
        var firstSourceChangeSent = false
        /// Decoder: a resolution change stopped decoding until CAPTURE restarts.
        var sourceChanged = false

        func queue(_ type: V4L2EventType, changes: UInt32 = 0) {
            guard subscriptions.contains(type.rawValue) else { return }
            events.append(V4L2Event(type: type, changes: changes, sequence: eventSequence))
            eventSequence += 1
        }
    }

    /// The stream's frame size, from a stand-in header (nil when it is not one).
    static func header(_ bytes: UnsafeRawBufferPointer) -> (width: UInt32, height: UInt32)? {
        guard bytes.count >= headerSize, bytes.prefix(8).elementsEqual(magic) else { return nil }
        return (
            bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self).bigEndian,
            bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian
        )
    }

    /// The decoder's buf_queue: an OUTPUT buffer queued before CAPTURE streams is parsed for the
    /// header; the first one found sets the CAPTURE format and sends the source change. Called
    /// without the lock (it maps the buffer).
    func outputQueued(_ context: SimulatedVideoContext, _ buffer: SimulatedVideoBuffer) {
        guard let state = context.codec, context.codecRole == .decoder,
            let capture = context.queue(.videoCapture),
            kernel.locked({ !state.firstSourceChangeSent && !capture.streaming })
        else { return }
        var size: (UInt32, UInt32)?
        try? kernel.withMapped(buffer.planes[0]) { size = Self.header(UnsafeRawBufferPointer($0)) }
        guard let (width, height) = size else { return }
        kernel.locked {
            (capture.pixelFormat, capture.width, capture.height) = (.bgr24, width, height)
            state.firstSourceChangeSent = true
            state.queue(.sourceChange, changes: V4L2Event.resolutionChanged)
            kernel.state.broadcast()
        }
    }

    /// A CAPTURE buffer queued while the drain waits for one: it is the last, empty (vicodec
    /// buf_queue with v4l2_m2m_dst_buf_is_last). Lock held.
    func captureQueued(_ context: SimulatedVideoContext, _ queue: SimulatedVideoQueue, _ buffer: SimulatedVideoBuffer) {
        guard let state = context.codec, queue.streaming, state.nextBufferIsLast else { return }
        state.nextBufferIsLast = false
        finishLast(state, queue, buffer)
    }

    /// v4l2_m2m_last_buffer_done: an empty buffer flagged LAST; the context has stopped.
    private func finishLast(_ state: State, _ queue: SimulatedVideoQueue, _ buffer: SimulatedVideoBuffer) {
        kernel.finish(queue, buffer)
        buffer.planes[0].bytesUsed = 0
        buffer.last = true
        (state.hasStopped, state.isDraining, state.lastSource) = (true, false, nil)
        state.queue(.endOfStream)
    }

    /// VIDIOC_ENCODER_CMD / DECODER_CMD (vicodec_encoder_cmd, v4l2_m2m_encoder_cmd). Lock held.
    func command(_ context: SimulatedVideoContext, _ command: V4L2CodecCommand, _ operation: String) throws(KernelError)
    {
        guard let state = context.codec else { throw KernelError(operation, .ENOTTY) }
        guard command == .stop || command == .start else { throw KernelError(operation, .EINVAL) }
        guard let output = context.queue(.videoOutput), let capture = context.queue(.videoCapture),
            output.streaming, capture.streaming
        else { return }  // vicodec: nothing to drain or resume before both queues stream
        if command == .start {
            if state.isDraining { throw KernelError(operation, .EBUSY) }
            if state.hasStopped {
                state.hasStopped = false
                state.lastBufferDequeued = false
            }
            return
        }
        // v4l2_update_last_buf_state.
        if state.isDraining { throw KernelError(operation, .EBUSY) }
        if state.hasStopped { return }
        state.isDraining = true
        if let last = output.buffers.filter({ $0.state == .queued }).max(by: { $0.queuedAt < $1.queuedAt }) {
            state.lastSource = last
        } else if let next = capture.oldest(.queued) {
            finishLast(state, capture, next)
        } else {
            state.nextBufferIsLast = true
        }
        kernel.state.broadcast()
    }

    /// device_run: the oldest OUTPUT buffer into the oldest CAPTURE buffer, encoded or decoded;
    /// the drain's last source gives a result flagged LAST.
    func runJob(_ context: SimulatedVideoContext) throws(KernelError) {
        guard let state = context.codec, let role = context.codecRole, let source = context.queue(.videoOutput),
            let destination = context.queue(.videoCapture)
        else { return }
        let job = kernel.locked { () -> (SimulatedVideoBuffer, SimulatedVideoBuffer)? in
            guard source.streaming, destination.streaming, !state.sourceChanged, !state.hasStopped,
                let input = source.oldest(.queued), let output = destination.oldest(.queued)
            else { return nil }
            return (input, output)
        }
        guard let (input, output) = job else { return }
        let (width, height, sourceFormat, destinationFormat) = kernel.locked {
            (Int(source.width), Int(source.height), source.pixelFormat, destination.pixelFormat)
        }
        var picture: [UInt8] = []
        try kernel.withMapped(input.planes[0]) { picture = Array($0.prefix(Int(input.planes[0].bytesUsed))) }
        var produced = 0
        var failed = false
        var resized: (UInt32, UInt32)?
        try kernel.withMapped(output.planes[0]) { view in
            switch role {
            case .encoder:
                produced = Self.encode(picture, width: width, height: height, format: sourceFormat, into: view)
            case .decoder:
                guard let size = picture.withUnsafeBytes({ Self.header($0) }) else {
                    failed = true
                    return
                }
                let (outWidth, outHeight) = kernel.locked { (destination.width, destination.height) }
                if size != (outWidth, outHeight) {
                    resized = size
                    return
                }
                produced = Self.decode(
                    picture, width: Int(size.0), height: Int(size.1), format: destinationFormat, into: view)
            }
        }
        kernel.locked {
            if let (newWidth, newHeight) = resized {
                // job_ready: a new resolution. The CAPTURE buffer comes back empty and LAST, the
                // format changes, and decoding waits for CAPTURE to be set up again.
                (destination.pixelFormat, destination.width, destination.height) = (.bgr24, newWidth, newHeight)
                kernel.finish(destination, output)
                output.planes[0].bytesUsed = 0
                output.last = true
                state.sourceChanged = true
                state.queue(.sourceChange, changes: V4L2Event.resolutionChanged)
                kernel.state.broadcast()
                return
            }
            kernel.finish(source, input)
            kernel.finish(destination, output)
            output.planes[0].bytesUsed = UInt32(produced)
            input.error = failed
            output.error = failed
            output.timestamp = input.timestamp  // v4l2_m2m_buf_copy_metadata
            if state.lastSource === input {
                output.last = true
                (state.hasStopped, state.isDraining, state.lastSource) = (true, false, nil)
                state.queue(.endOfStream)
            }
            kernel.state.broadcast()
        }
    }

    /// The stand-in encoding: header, then B, G, R per pixel with the low 2 bits dropped.
    static func encode(
        _ picture: [UInt8], width: Int, height: Int, format: SimulatedPixelFormat,
        into view: UnsafeMutableRawBufferPointer
    ) -> Int {
        let step = format == .xbgr32 ? 4 : 3
        let size = headerSize + width * height * 3
        guard view.count >= size, picture.count >= width * height * step else { return 0 }
        view.copyBytes(from: magic)
        view.storeBytes(of: UInt32(3).bigEndian, toByteOffset: 8, as: UInt32.self)  // version
        view.storeBytes(of: UInt32(width).bigEndian, toByteOffset: 12, as: UInt32.self)
        view.storeBytes(of: UInt32(height).bigEndian, toByteOffset: 16, as: UInt32.self)
        view.storeBytes(of: UInt32(width * height * 3).bigEndian, toByteOffset: 40, as: UInt32.self)
        for pixel in 0..<width * height {
            for channel in 0..<3 {
                view[headerSize + pixel * 3 + channel] = picture[pixel * step + channel] & 0xfc
            }
        }
        return size
    }

    /// The stand-in decoding into XR24 (B, G, R, 0) or BGR24, each value in the middle of its step.
    static func decode(
        _ stream: [UInt8], width: Int, height: Int, format: SimulatedPixelFormat,
        into view: UnsafeMutableRawBufferPointer
    ) -> Int {
        let step = format == .xbgr32 ? 4 : 3
        guard stream.count >= headerSize + width * height * 3, view.count >= width * height * step else { return 0 }
        for pixel in 0..<width * height {
            for channel in 0..<3 { view[pixel * step + channel] = stream[headerSize + pixel * 3 + channel] | 0x02 }
            if step == 4 { view[pixel * step + 3] = 0 }
        }
        return width * height * step
    }
}
