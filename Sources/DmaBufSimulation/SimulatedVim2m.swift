import DmaBufKernel
import Foundation

/// vim2m (drivers/media/test-drivers/vim2m.c) as the model has it: a job copies the oldest
/// queued source buffer into the oldest queued destination, scaled and flipped.
struct SimulatedVim2m {
    unowned let kernel: SimulatedKernel

    /// vim2m's device_run: with both queues streaming and a buffer queued on each, the source
    /// is copied into the destination (scaled to its size, flipped as HFLIP/VFLIP say).
    func runJob(_ context: SimulatedVideoContext) throws(KernelError) {
        guard let source = context.queue(.videoOutput), let destination = context.queue(.videoCapture) else { return }
        let job = kernel.locked { () -> (SimulatedVideoBuffer, SimulatedVideoBuffer, Bool, Bool)? in
            guard source.streaming, destination.streaming, let input = source.oldest(.queued),
                let output = destination.oldest(.queued)
            else { return nil }
            return (
                input, output, context.controls[V4L2Control.horizontalFlip] == 1,
                context.controls[V4L2Control.verticalFlip] == 1
            )
        }
        guard let (input, output, hflip, vflip) = job else { return }
        let (sw, sh, dw, dh, packs565) = kernel.locked {
            (
                Int(source.width), Int(source.height), Int(destination.width), Int(destination.height),
                destination.pixelFormat == .rgb565
            )
        }
        var pixels = [UInt8](repeating: 0, count: sw * sh * 3)
        try kernel.withMapped(input.planes[0]) { view in
            let offset = Int(input.planes[0].dataOffset)
            pixels.withUnsafeMutableBytes {
                $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: view[offset..<min(view.count, offset + $0.count)]))
            }
        }
        // The source is RGB24; the destination RGB24 or RGB565, packed as vim2m's copy_two_pixels does.
        let cpp = packs565 ? 2 : 3
        try kernel.withMapped(output.planes[0]) { view in
            for y in 0..<dh where (y + 1) * dw * cpp <= view.count {
                let sy = (vflip ? dh - 1 - y : y) * sh / dh
                for x in 0..<dw {
                    let sx = (hflip ? dw - 1 - x : x) * sw / dw
                    let (r, g, b) = (
                        pixels[(sy * sw + sx) * 3], pixels[(sy * sw + sx) * 3 + 1], pixels[(sy * sw + sx) * 3 + 2]
                    )
                    if packs565 {
                        let packed = UInt16(r) << 8 & 0xf800 | UInt16(g) << 3 & 0x07e0 | UInt16(b) >> 3
                        view.storeBytes(of: packed.littleEndian, toByteOffset: (y * dw + x) * 2, as: UInt16.self)
                    } else {
                        (view[(y * dw + x) * 3], view[(y * dw + x) * 3 + 1], view[(y * dw + x) * 3 + 2]) = (r, g, b)
                    }
                }
            }
        }
        kernel.locked {
            kernel.finish(source, input)
            kernel.finish(destination, output)
            output.timestamp = input.timestamp  // v4l2_m2m_buf_copy_metadata
            kernel.state.broadcast()
        }
    }
}
