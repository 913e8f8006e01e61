import DmaBufKernel
import Foundation
import Logging

/// Pixels of a run: the copy path, frame comparison with the writeback, PNG dumps.
extension Pipeline {
    func copy(
        _ source: PipelineSlot, into target: PipelineSlot, on display: borrowing DRMDevice, rows: Int, rowBytes: Int,
        sourcePitch: Int
    ) throws {
        let targetPitch = target.pitch
        try source.withDmaBuf { buffer throws in
            try target.withGEM { gem throws in
                try buffer.read { from in
                    try display.withMapping(gem) { to in
                        for row in 0..<rows {
                            to.baseAddress!.advanced(by: row * targetPitch).copyMemory(
                                from: from.baseAddress!.advanced(by: row * sourcePitch), byteCount: rowBytes)
                        }
                    }
                }
            }
        }
    }

    /// A slot's pixels for the CPU to read: through its dma-buf (bracketed by SYNC) or through
    /// the display's mapping of its GEM buffer.
    func withPixels<R>(
        _ slot: PipelineSlot, on display: borrowing DRMDevice, _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        if slot.hasDmaBuf {
            return try slot.withDmaBuf { buffer throws in try buffer.read { try body($0) } }
        }
        return try slot.withGEM { gem throws in
            try display.withMapping(gem) { try body(UnsafeRawBufferPointer($0)) }
        }
    }

    /// Writes a buffer (rows of `pitch` bytes) as PNG, converted to RGB by libv4lconvert.
    func dump(
        _ slot: PipelineSlot, pitch: Int, pixelFormat: V4L2PixelFormat, on display: borrowing DRMDevice, to path: String
    ) throws {
        let (width, height) = (configuration.width, configuration.height)
        let bytes = try withPixels(slot, on: display) { Array($0.prefix(pitch * height)) }
        let format = V4L2Format(
            type: .videoCapture, width: UInt32(width), height: UInt32(height), pixelFormat: pixelFormat,
            planes: [V4L2Format.Plane(bytesPerLine: UInt32(pitch), sizeImage: UInt32(pitch * height))])
        try PNGFile.write(
            rgb: try FrameConverter().rgb24([bytes], format: format), width: width, height: height, to: path)
    }

    /// What one verified frame showed.
    struct FrameCheck {
        /// Pixels (RGB, the X byte ignored) that differ between the buffer shown and the writeback.
        var differing = 0
        /// The picture is one flat colour below the counter rows: the source shows nothing.
        var blank = true
        /// The buffer shown holds the same picture as the frame shown before it, so a display
        /// stuck on the old one would pass unnoticed (nil: no frame before it).
        var sameAsPrevious: Bool?
    }

    /// The rows at the top where the frame counters live (vivid's OSD counter line is rows
    /// 16–31, its line 1; the pattern's counter rows 0–7): left out of the blank test, which
    /// asks whether the picture is flat.
    static let counterRows = 32

    /// Compares the buffer shown with the writeback, pixel by pixel, and with the buffer shown
    /// before it (same layout).
    func check(
        _ shown: PipelineSlot, previous: PipelineSlot?, writeback: PipelineSlot, on display: borrowing DRMDevice,
        pitch: Int
    ) throws -> FrameCheck {
        let (width, height) = (configuration.width, configuration.height)
        let writebackPitch = writeback.pitch
        let rgb565 = displayFormat.bytesPerPixel == 2
        func count(
            _ shownView: UnsafeRawBufferPointer, _ written: UnsafeRawBufferPointer, _ before: UnsafeRawBufferPointer?
        ) -> FrameCheck {
            let b = written.bindMemory(to: UInt32.self)
            let rowB = writebackPitch / 4
            var result = FrameCheck(sameAsPrevious: before.map { _ in true })
            if rgb565 {
                // vkms widens RGB565 to 16 bits a channel and narrows it for writeback: allow ±1.
                let a = shownView.bindMemory(to: UInt16.self), p = before?.bindMemory(to: UInt16.self)
                let first = a[min(Self.counterRows, height - 1) * pitch / 2]
                for y in 0..<height {
                    for x in 0..<width {
                        let raw = UInt16(littleEndian: a[y * pitch / 2 + x])
                        let expected = DRMFormat.xrgb8888(fromRGB565: raw), got = b[y * rowB + x]
                        if !Self.within(1, expected, got) { result.differing += 1 }
                        if result.blank && y >= Self.counterRows && raw != first { result.blank = false }
                        if result.sameAsPrevious == true && raw != p![y * pitch / 2 + x] {
                            result.sameAsPrevious = false
                        }
                    }
                }
                return result
            }
            let a = shownView.bindMemory(to: UInt32.self), p = before?.bindMemory(to: UInt32.self)
            let rowA = pitch / 4
            let first = a[min(Self.counterRows, height - 1) * rowA] & 0x00ff_ffff
            for y in 0..<height {
                let (startA, startB) = (y * rowA, y * rowB)
                for x in 0..<width {
                    let pixel = a[startA + x] & 0x00ff_ffff
                    if pixel != b[startB + x] & 0x00ff_ffff { result.differing += 1 }
                    if result.blank && y >= Self.counterRows && pixel != first { result.blank = false }
                    if result.sameAsPrevious == true && pixel != p![startA + x] & 0x00ff_ffff {
                        result.sameAsPrevious = false
                    }
                }
            }
            return result
        }
        return try withPixels(writeback, on: display) { written throws in
            try withPixels(shown, on: display) { shownView throws in
                guard let previous else { return count(shownView, written, nil) }
                return try withPixels(previous, on: display) { count(shownView, written, $0) }
            }
        }
    }

    /// Every RGB channel of two XRGB8888 pixels within `tolerance`.
    static func within(_ tolerance: Int, _ a: UInt32, _ b: UInt32) -> Bool {
        for shift: UInt32 in [0, 8, 16] {
            let difference = Int((a >> shift) & 0xff) - Int((b >> shift) & 0xff)
            if difference > tolerance || difference < -tolerance { return false }
        }
        return true
    }
}
