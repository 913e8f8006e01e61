import DmaBufKernel
import Foundation

/// vkms (drivers/gpu/drm/vkms) as the model has it: the CPU composition of the primary plane
/// into a writeback framebuffer, in vkms's 16-bit-per-channel arithmetic. The DRM dispatch
/// checks an atomic commit and calls this when it has a writeback job.
struct SimulatedVKMS {
    unowned let kernel: SimulatedKernel

    /// What vkms writes back: the primary plane's XRGB8888/ARGB8888 pixels over black, X = 0xff.
    func composeWriteback(device: SimulatedDRMDevice, into target: SimulatedFramebuffer) throws(KernelError) {
        let (source, mode) = kernel.locked {
            (device.kms.planeFB[SimulatedDRMDevice.primaryPlane].flatMap { device.framebuffers[$0] }, device.kms.mode!)
        }
        let width = Int(mode.hdisplay), height = Int(mode.vdisplay)
        let page = kernel.pageSize
        func map(_ object: SimulatedGEM) throws(KernelError) -> UnsafeMutableRawPointer {
            try kernel.mapSegments(
                object.segments, length: (Int(object.size) + page - 1) / page * page, protection: [.read, .write],
                shared: true, offset: 0)
        }
        let out = try map(target.objects[0])
        defer { try? kernel.host.munmap(out, length: Int(target.objects[0].size)) }
        let outPitch = Int(target.request.pitches[0]), outOffset = Int(target.request.offsets[0])
        var input: (UnsafeMutableRawPointer, Int, Int, Int)?
        if let source {
            let base = try map(source.objects[0])
            // vkms 6.1 reads the plane at twice its offset: vkms_plane.c adds fb->offsets[0] to a
            // vmap address drm_gem_fb_vmap already advanced by it. (Writeback adds it once.)
            input = (
                base, Int(source.request.pitches[0]), 2 * Int(source.request.offsets[0]), Int(source.objects[0].size)
            )
        }
        defer { if let input, let source { try? kernel.host.munmap(input.0, length: Int(source.objects[0].size)) } }
        // vkms composes in 16 bits a channel: the plane's pixels are widened, then narrowed to
        // the writeback format (vkms_formats.c).
        let rgb565 = source?.request.format == DRMFormat.rgb565
        let cpp = rgb565 ? 2 : 4
        let targetFormat = target.request.format
        for y in 0..<height {
            for x in 0..<width {
                var wide: (r: UInt32, g: UInt32, b: UInt32) = (0, 0, 0)
                if let (base, pitch, offset, size) = input, offset + y * pitch + x * cpp + cpp <= size {
                    if rgb565 {
                        let pixel = UInt16(
                            littleEndian: base.loadUnaligned(
                                fromByteOffset: offset + y * pitch + x * 2, as: UInt16.self))
                        wide = (
                            Self.scale(UInt32(pixel >> 11 & 0x1f), 31, 65535),
                            Self.scale(UInt32(pixel >> 5 & 0x3f), 63, 65535),
                            Self.scale(UInt32(pixel & 0x1f), 31, 65535)
                        )
                    } else {
                        let pixel = base.loadUnaligned(fromByteOffset: offset + y * pitch + x * 4, as: UInt32.self)
                        wide = ((pixel >> 16 & 0xff) * 257, (pixel >> 8 & 0xff) * 257, (pixel & 0xff) * 257)
                    }
                }
                let at = outOffset + y * outPitch
                switch targetFormat {
                case .rgb565:
                    let packed =
                        Self.scale(wide.r, 65535, 31) << 11 | Self.scale(wide.g, 65535, 63) << 5
                        | Self.scale(wide.b, 65535, 31)
                    out.storeBytes(of: UInt16(packed).littleEndian, toByteOffset: at + x * 2, as: UInt16.self)
                case .xrgb16161616, .argb16161616:
                    for (index, value) in [wide.b, wide.g, wide.r, 0xffff].enumerated() {
                        out.storeBytes(
                            of: UInt16(value).littleEndian, toByteOffset: at + x * 8 + index * 2, as: UInt16.self)
                    }
                default:  // XRGB8888
                    let pixel =
                        0xff00_0000 | Self.scale(wide.r, 65535, 255) << 16 | Self.scale(wide.g, 65535, 255) << 8
                        | Self.scale(wide.b, 65535, 255)
                    out.storeBytes(of: pixel, toByteOffset: at + x * 4, as: UInt32.self)
                }
            }
        }
    }

    /// `value` × `to` / `from`, rounded (vkms's fixed-point ratios, DIV_ROUND_CLOSEST).
    static func scale(_ value: UInt32, _ from: UInt32, _ to: UInt32) -> UInt32 {
        (value * to + from / 2) / from
    }
}
