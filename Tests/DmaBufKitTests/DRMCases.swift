import DmaBufKit
import Foundation
import Testing

/// DRM/KMS behaviour that must hold on any kernel with vkms and vgem: each case runs on the
/// simulated kernel and, in the VM, on the real one.
enum DRMCases {
    static let xrgb8888: UInt32 = 0x3432_5258  // fourcc 'XR24'

    /// A pattern no two neighbouring pixels share, with a junk X byte (scanout ignores it).
    static func pixel(_ x: Int, _ y: Int) -> UInt32 {
        let r = UInt32(x & 0xff), g = UInt32(y & 0xff), b = UInt32((x ^ (y << 1)) & 0xff)
        return 0x5a00_0000 | r << 16 | g << 8 | b
    }

    static func fill(_ view: UnsafeMutableRawBufferPointer, width: Int, height: Int, pitch: Int) {
        for y in 0..<height {
            for x in 0..<width { view.storeBytes(of: pixel(x, y).littleEndian, toByteOffset: y * pitch + x * 4, as: UInt32.self) }
        }
    }

    /// Pixels whose RGB differs from the pattern (writeback writes X as 0xff), as "x,y" samples.
    static func mismatches(_ view: UnsafeRawBufferPointer, width: Int, height: Int, pitch: Int) -> (count: Int, first: [String]) {
        var count = 0
        var first: [String] = []
        for y in 0..<height {
            for x in 0..<width {
                let got = UInt32(littleEndian: view.loadUnaligned(fromByteOffset: y * pitch + x * 4, as: UInt32.self))
                if got & 0xff_ffff != pixel(x, y) & 0xff_ffff {
                    count += 1
                    if first.count < 5 { first.append("(\(x),\(y)) got \(String(got, radix: 16)) want \(String(pixel(x, y), radix: 16))") }
                }
            }
        }
        return (count, first)
    }

    /// Framebuffers this open file owns (GETRESOURCES lists the caller's own).
    static func framebufferCount(_ kernel: any Kernel, _ fd: FileDescriptorNumber) throws -> Int {
        try kernel.drmResources(fd).framebuffers.count
    }

    enum Exporter: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case systemHeap = "system heap", udmabuf, vgemDumb = "vgem dumb buffer", vkmsDumb = "vkms dumb buffer"
        var testDescription: String { rawValue }
    }

    /// Shows a buffer from `exporter` filled with the pattern on vkms, writes the screen back
    /// into a dumb buffer of ours and compares every pixel.
    static func writebackMatchesTheScannedOutBuffer(_ kernel: any Kernel, from exporter: Exporter) throws {
        try expectNoLeaks(kernel) {
            let vkms = try DRMDevice(driver: "vkms", kernel: kernel)
            let pipe = try DisplayPipe(device: vkms)
            #expect(pipe.writeback != nil, "vkms has a writeback connector (vkms.enable_writeback=1)")
            let width = Int(pipe.mode.hdisplay), height = Int(pipe.mode.vdisplay)
            let pitch = width * 4

            let scanout: GEMBuffer
            switch exporter {
            case .systemHeap:
                let buffer = try DmaHeap("system", kernel: kernel).allocate(length: pitch * height, name: "scanout")
                try buffer.write { fill($0, width: width, height: height, pitch: pitch) }
                scanout = try vkms.importBuffer(buffer)
                try buffer.close()
            case .udmabuf:
                let memfd = try Memfd(kernel: kernel, name: "scanout", length: pitch * height)
                try memfd.withMapping { fill($0, width: width, height: height, pitch: pitch) }
                let buffer = try UdmabufDevice(kernel: kernel).create(from: memfd)
                scanout = try vkms.importBuffer(buffer)
                try buffer.close()
            case .vgemDumb:
                let vgem = try DRMDevice(driver: "vgem", kernel: kernel)
                let dumb = try vgem.createDumbBuffer(width: width, height: height)
                #expect(dumb.pitch == pitch)
                try vgem.withMapping(dumb) { fill($0, width: width, height: height, pitch: pitch) }
                let shared = try vgem.export(dumb)
                scanout = try vkms.importBuffer(shared)
                try shared.close()
                try dumb.close()
                try vgem.close()
            case .vkmsDumb:
                scanout = try vkms.createDumbBuffer(width: width, height: height)
                try vkms.withMapping(scanout) { fill($0, width: width, height: height, pitch: pitch) }
            }
            let framebuffer = try vkms.addFramebuffer(DRMFramebufferRequest(
                width: UInt32(width), height: UInt32(height), format: xrgb8888, handles: [scanout.handle.rawValue], pitches: [UInt32(pitch)]))

            let target = try vkms.createDumbBuffer(width: width, height: height)
            let targetFB = try vkms.addFramebuffer(DRMFramebufferRequest(
                width: UInt32(width), height: UInt32(height), format: xrgb8888, handles: [target.handle.rawValue], pitches: [UInt32(target.pitch!)]))

            if exporter == .udmabuf, try kernel.kernelRelease().hasPrefix("6.1.") {
                // udmabuf gains vmap in 6.2; vkms needs it to read the buffer.
                let error = expectKernelError(.EINVAL) { _ = try pipe.show(framebuffer, on: vkms, writebackInto: targetFB.id) }
                #expect(error?.reason?.contains("udmabuf has none before Linux 6.2") == true)
                try targetFB.remove()
                try framebuffer.remove()
                try target.close()
                try scanout.close()
                try vkms.close()
                return
            }
            let shown = try pipe.show(framebuffer, on: vkms, writebackInto: targetFB.id)
            #expect(try shown.onScreen.wait(timeout: .seconds(5)), "the frame reached the screen")
            #expect(try shown.writeback?.wait(timeout: .seconds(5)) == true, "the writeback completed")
            let result = try vkms.withMapping(target) { mismatches(UnsafeRawBufferPointer($0), width: width, height: height, pitch: target.pitch!) }
            #expect(result.count == 0, "\(result.count) of \(width * height) pixels differ: \(result.first)")

            try pipe.disable(on: vkms)
            try shown.close()
            try targetFB.remove()
            try framebuffer.remove()
            try target.close()
            try scanout.close()
            try vkms.close()
        }
    }
}
