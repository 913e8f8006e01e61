import DmaBufKernel
import Foundation

/// vivid (drivers/media/test-drivers/vivid) as the model has it: its webcam input's sizes and
/// frame intervals, the capture thread that fills the oldest queued buffer each frame period,
/// and the picture it draws (the test pattern control's bars or black, and the OSD counter).
/// V4L2 dispatch finds the device and calls this; vb2's queue rules stay in dispatch.
struct SimulatedVivid {
    unowned let kernel: SimulatedKernel

    /// vivid's webcam input sizes; the times per frame it offers per size depend on the
    /// version (`intervals(sizeIndex:)`).
    static let webcamSizes: [(UInt32, UInt32)] = [
        (320, 180), (640, 360), (640, 480), (1280, 720), (1920, 1080), (3840, 2160),
    ]

    /// The frame intervals vivid offers at webcam size `sizeIndex`, fastest last.
    func intervals(sizeIndex: Int) -> [V4L2Fraction] {
        let version = kernel.version
        return Array(
            version.vividWebcamIntervals.prefix(
                version.vividIntervalCount(sizeIndex: sizeIndex, height: Self.webcamSizes[sizeIndex].1)))
    }

    static let bars: [(UInt8, UInt8, UInt8)] = ColourBars.seventyFivePercent.map { ($0.red, $0.green, $0.blue) }

    static func ycbcr(_ rgb: (UInt8, UInt8, UInt8)) -> (UInt8, UInt8, UInt8) {
        let (r, g, b) = (Double(rgb.0), Double(rgb.1), Double(rgb.2))
        let y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
        let cb = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
        let cr = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
        return (UInt8(y.rounded()), UInt8(cb.rounded()), UInt8(cr.rounded()))
    }

    /// vivid's test pattern menu entry "100% Black".
    static let blackPattern: Int32 = 5

    /// One row of plane `plane` of the picture: the bars, or black for that test pattern.
    static func barRow(_ format: SimulatedPixelFormat, plane: Int, width: Int, pattern: Int32 = 0) -> [UInt8] {
        let colours = pattern == blackPattern ? [(UInt8(0), UInt8(0), UInt8(0))] : bars
        let bar = { (x: Int) in colours[x * colours.count / width] }
        switch (format.fourcc, plane) {
        case (SimulatedPixelFormat.rgb24.fourcc, _): return (0..<width).flatMap { x in [bar(x).0, bar(x).1, bar(x).2] }
        case (SimulatedPixelFormat.xbgr32.fourcc, _):
            return (0..<width).flatMap { x in [bar(x).2, bar(x).1, bar(x).0, 0] }
        case (SimulatedPixelFormat.yuyv.fourcc, _):
            return stride(from: 0, to: width, by: 2).flatMap { x -> [UInt8] in
                let (y0, cb, cr) = ycbcr(bar(x)), y1 = ycbcr(bar(x + 1)).0
                return [y0, cb, y1, cr]
            }
        case (_, 0): return (0..<width).map { ycbcr(bar($0)).0 }
        default:
            return stride(from: 0, to: width, by: 2).flatMap { x -> [UInt8] in [ycbcr(bar(x)).1, ycbcr(bar(x)).2] }
        }
    }

    /// One period of vivid's capture thread (vivid_thread_vid_cap_tick): the frame goes into
    /// the oldest queued buffer, or is lost when none is queued; the sequence moves on either
    /// way, past the periods a late thread slept through. The picture is drawn at DQBUF.
    /// Caller holds the lock.
    func captureTick(_ queue: SimulatedVideoQueue) {
        queue.sequence += queue.lateWake
        queue.lateWake = 0
        guard let buffer = queue.oldest(.queued) else {
            queue.sequence += 1
            return
        }
        kernel.finish(queue, buffer)
        buffer.awaitsPicture = true
        buffer.loopedPicture = kernel.videoDevices.first { $0.shared?.queues.first === queue }
            .flatMap(loopedOutput(into:)).flatMap(outputPicture)
        kernel.state.broadcast()
    }

    /// vivid's picture into every plane of a capture buffer: the looped output frame, or its
    /// test pattern control's bars or black. With its OSD on (text mode "All" or "Counters
    /// Only") vivid writes the frame's time and sequence number on its text line 1 (rows 16–31)
    /// from x = 16, over looped video too; the model writes the sequence number there, one 8x8
    /// block of 0xff bytes per set bit, in the first plane.
    func draw(
        _ queue: SimulatedVideoQueue, _ context: SimulatedVideoContext, sequence: UInt32,
        into buffer: SimulatedVideoBuffer
    ) throws(KernelError) {
        let (format, width, height, planeFormats, pattern, osd, looped) = kernel.locked {
            (
                queue.pixelFormat, Int(queue.width), Int(queue.height), queue.planeFormats,
                context.controls[VividControl.testPattern] ?? 0,
                (context.controls[VividControl.osdTextMode] ?? 0) != VividControl.osdNone, buffer.loopedPicture
            )
        }
        for (number, plane) in buffer.planes.enumerated() {
            let row = Self.barRow(format, plane: number, width: width, pattern: pattern)
            let pitch = Int(planeFormats[number].bytesPerLine)
            let rows = height / Int(format.planes[number].verticalDivisor)
            let pixelBytes = max(1, row.count / max(width, 1))
            try kernel.withMapped(plane) { view in
                if let looped, number < looped.count {
                    looped[number].withUnsafeBytes {
                        view.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: min($0.count, view.count))
                    }
                } else {
                    for y in 0..<rows where (y + 1) * pitch <= view.count {
                        row.withUnsafeBytes {
                            view.baseAddress!.advanced(by: y * pitch).copyMemory(
                                from: $0.baseAddress!, byteCount: row.count)
                        }
                    }
                }
                guard osd && number == 0 else { return }
                for bit in 0..<32 where 16 + (bit + 1) * 8 <= width && sequence >> bit & 1 == 1 {
                    for y in 16..<min(24, rows) where (y + 1) * pitch <= view.count {
                        (view.baseAddress! + y * pitch + (16 + bit * 8) * pixelBytes).initializeMemory(
                            as: UInt8.self, repeating: 0xff, count: 8 * pixelBytes)
                    }
                }
            }
        }
        kernel.locked { buffer.loopedPicture = nil }
    }
}
