import Foundation
import Logging

/// Pixels of a run: the copy path, frame comparison with the writeback, PNG dumps.
extension Pipeline {
    func copy(_ source: PipelineSlot, into target: PipelineSlot, on display: borrowing DRMDevice, rows: Int, rowBytes: Int, sourcePitch: Int) throws(KernelError) {
        let targetPitch = target.pitch
        try source.withDmaBuf { buffer throws(KernelError) in
            try target.withGEM { gem throws(KernelError) in
                try rethrowingKernelErrors("copy") {
                    try buffer.read { from in
                        try display.withMapping(gem) { to in
                            for row in 0..<rows {
                                to.baseAddress!.advanced(by: row * targetPitch).copyMemory(from: from.baseAddress!.advanced(by: row * sourcePitch), byteCount: rowBytes)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes a buffer (rows of `pitch` bytes) as PNG, converted to RGB by libv4lconvert.
    func dump(_ slot: PipelineSlot, pitch: Int, pixelFormat: UInt32, on display: borrowing DRMDevice, to path: String) throws(KernelError) {
        let (width, height) = (configuration.width, configuration.height)
        let bytes: [UInt8] = try slot.hasDmaBuf
            ? slot.withDmaBuf { buffer throws(KernelError) in try rethrowingKernelErrors("read") { try buffer.read { Array($0.prefix(pitch * height)) } } }
            : slot.withGEM { gem throws(KernelError) in try rethrowingKernelErrors("read") { try display.withMapping(gem) { Array($0.prefix(pitch * height)) } } }
        let format = V4L2Format(type: .videoCapture, width: UInt32(width), height: UInt32(height), pixelFormat: pixelFormat,
                                planes: [V4L2Format.Plane(bytesPerLine: UInt32(pitch), sizeImage: UInt32(pitch * height))])
        try PNGFile.write(rgb: try FrameConverter().rgb24([bytes], format: format), width: width, height: height, to: path)
    }

    /// Pixels (RGB, the X byte ignored) that differ between the shown buffer and the
    /// writeback, and whether the shown picture is one flat colour.
    func compare(_ shown: PipelineSlot, _ writeback: PipelineSlot, on display: borrowing DRMDevice, pitch: Int) throws(KernelError) -> (Int, Bool) {
        let (width, height) = (configuration.width, configuration.height)
        let writebackPitch = writeback.pitch
        let rgb565 = displayFormat.bytesPerPixel == 2
        func count(_ shownView: UnsafeRawBufferPointer, _ written: UnsafeRawBufferPointer) -> (Int, Bool) {
            let b = written.bindMemory(to: UInt32.self)
            let rowB = writebackPitch / 4
            var differing = 0, flat = true
            if rgb565 {
                // vkms widens RGB565 to 16 bits a channel and narrows it for writeback: allow ±1.
                let a = shownView.bindMemory(to: UInt16.self)
                let first = a[0]
                for y in 0..<height {
                    for x in 0..<width {
                        let raw = UInt16(littleEndian: a[y * pitch / 2 + x])
                        let expected = DRMFormat.xrgb8888(fromRGB565: raw), got = b[y * rowB + x]
                        if !Self.within(1, expected, got) { differing += 1 }
                        if flat && raw != first { flat = false }
                    }
                }
                return (differing, flat)
            }
            let a = shownView.bindMemory(to: UInt32.self)
            let rowA = pitch / 4
            let first = a[0] & 0x00ff_ffff
            for y in 0..<height {
                let (startA, startB) = (y * rowA, y * rowB)
                for x in 0..<width {
                    let pixel = a[startA + x] & 0x00ff_ffff
                    if pixel != b[startB + x] & 0x00ff_ffff { differing += 1 }
                    if flat && pixel != first { flat = false }
                }
            }
            return (differing, flat)
        }
        return try writeback.withGEM { written throws(KernelError) in
            try rethrowingKernelErrors("compare") {
                try display.withMapping(written) { writtenView in
                    if shown.hasDmaBuf {
                        return try shown.withDmaBuf { buffer throws(KernelError) in
                            try rethrowingKernelErrors("compare") { try buffer.read { count($0, UnsafeRawBufferPointer(writtenView)) } }
                        }
                    }
                    return try shown.withGEM { gem throws(KernelError) in
                        try rethrowingKernelErrors("compare") { try display.withMapping(gem) { count(UnsafeRawBufferPointer($0), UnsafeRawBufferPointer(writtenView)) } }
                    }
                }
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
