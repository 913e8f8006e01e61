import DmaBufKernel
import Foundation

/// A consumer comparing each decoded frame with the source frame of the same number (kept by a
/// `FrameRecorder` at the source) by PSNR over B, G and R of XR24 rows: a lossy codec's output
/// cannot be compared byte for byte. The frame is released as soon as it is measured.
final class PSNRCheck: FrameConsumer {
    let recorder: FrameRecorder
    let width: Int
    let height: Int
    let pitch: Int
    /// Every n-th decoded frame is measured (reading two pictures costs CPU).
    let every: Int
    private(set) var decibels: [Double] = []
    /// Decoded frames whose source frame was no longer kept.
    private(set) var unmatched = 0
    private var seen = 0

    init(recorder: FrameRecorder, width: Int, height: Int, pitch: Int, every: Int) {
        (self.recorder, self.width, self.height, self.pitch, self.every) = (recorder, width, height, pitch, every)
    }

    var canAccept: Bool { true }

    func accept(_ frame: Frame) throws {
        defer { seen += 1 }
        guard seen % max(every, 1) == 0 else { return try frame.release() }
        guard let source = recorder.frames.last(where: { $0.number == frame.number }) else {
            unmatched += 1
            return try frame.release()
        }
        let decoded = try frame.slot.withDmaBuf { buffer in
            try buffer.read {
                Self.psnr(source.bytes, UnsafeRawBufferPointer($0), width: width, height: height, pitch: pitch)
            }
        }
        decibels.append(decoded)
        try frame.release()
    }

    /// 10·log10(255² / MSE) over B, G, R; identical pictures count as 100 dB.
    static func psnr(
        _ reference: [UInt8], _ picture: UnsafeRawBufferPointer, width: Int, height: Int, pitch: Int
    ) -> Double {
        var squares: UInt64 = 0
        reference.withUnsafeBytes { original in
            for y in 0..<height {
                let row = y * pitch
                for x in 0..<width {
                    for channel in 0..<3 {
                        let at = row + x * 4 + channel
                        let difference = Int(original[at]) - Int(picture[at])
                        squares += UInt64(difference * difference)
                    }
                }
            }
        }
        guard squares > 0 else { return 100 }
        let meanSquare = Double(squares) / Double(width * height * 3)
        return min(100, 10 * log10(255 * 255 / meanSquare))
    }
}
