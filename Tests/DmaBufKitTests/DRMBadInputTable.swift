import DmaBufKit
import Testing

/// Bad DRM inputs (after IGT's kms_addfb_basic and prime tests) and the errno Linux 6.1 and
/// 6.12 give, each citing where (the same functions and checks answer on both). Every row runs on the simulated and on the real kernel, through the raw
/// `Kernel` interface so the bad values reach the kernel unchanged.
struct DRMBadInput: CustomTestStringConvertible, Sendable {
    let name: String
    let errno: Errno
    let source: String
    let run: @Sendable (any Kernel, DRMFixture) throws(KernelError) -> Void
    var testDescription: String { "\(name) → \(errno.name)" }
}

/// A vkms card with a 512x512 XRGB8888 dumb buffer, and a vgem card.
struct DRMFixture {
    let vkms: FileDescriptorNumber
    let vgem: FileDescriptorNumber
    let dumb: GEMHandle
    let pitch: UInt32
    static let size: UInt32 = 512

    func request(
        pitch: UInt32? = nil, handle: UInt32? = nil, height: UInt32 = size, modifiers: [UInt64]? = nil
    ) -> DRMFramebufferRequest {
        DRMFramebufferRequest(
            width: Self.size, height: height, format: DRMCases.xrgb8888, handles: [handle.map(GEMHandle.init) ?? dumb],
            pitches: [pitch ?? self.pitch], modifiers: modifiers)
    }

    /// Opens the devices and makes the dumb buffer; `body` runs with them, then all is closed.
    static func with(_ kernel: any Kernel, _ body: (DRMFixture) throws -> Void) throws {
        let vkmsPath = try #require(try DRMDevice.drivers(kernel: kernel).first { $0.driver == "vkms" }?.path)
        let vgemPath = try #require(try DRMDevice.drivers(kernel: kernel).first { $0.driver == "vgem" }?.path)
        let vkms = try kernel.open(vkmsPath, flags: [.readWrite, .closeOnExec])
        defer { try? kernel.close(vkms) }
        let vgem = try kernel.open(vgemPath, flags: [.readWrite, .closeOnExec])
        defer { try? kernel.close(vgem) }
        let dumb = try kernel.drmCreateDumb(vkms, width: size, height: size, bitsPerPixel: 32)
        defer { try? kernel.drmDestroyDumb(vkms, dumb.handle) }
        try body(DRMFixture(vkms: vkms, vgem: vgem, dumb: dumb.handle, pitch: dumb.pitch))
    }
}

enum DRMBadInputTable {
    static let addfb = "drm_framebuffer.c"
    static let rows: [DRMBadInput] = [
        DRMBadInput(name: "AddFB2 pitch 0", errno: .EINVAL, source: "\(addfb) framebuffer_check: pitch < min_pitch") {
            k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(pitch: 0))
        },
        DRMBadInput(name: "AddFB2 pitch 32", errno: .EINVAL, source: "\(addfb) framebuffer_check: pitch < min_pitch") {
            k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(pitch: 32))
        },
        DRMBadInput(name: "AddFB2 pitch 63", errno: .EINVAL, source: "\(addfb) framebuffer_check: pitch < min_pitch") {
            k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(pitch: 63))
        },
        DRMBadInput(
            name: "AddFB2 pitch 65536 (buffer too small)", errno: .EINVAL,
            source: "drm_gem_framebuffer_helper.c: size < min_size"
        ) { k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(pitch: 65536))
        },
        DRMBadInput(
            name: "AddFB2 without a handle", errno: .EINVAL, source: "\(addfb) framebuffer_check: !r->handles[i]"
        ) { k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(handle: 0))
        },
        DRMBadInput(
            name: "AddFB2 with an unknown handle", errno: .ENOENT,
            source: "drm_gem_framebuffer_helper.c: drm_gem_object_lookup"
        ) { k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(handle: 0xdead))
        },
        DRMBadInput(
            name: "AddFB2 taller than the buffer", errno: .EINVAL,
            source: "drm_gem_framebuffer_helper.c: size < min_size"
        ) { k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(height: 1024))
        },
        DRMBadInput(
            name: "AddFB2 with plane-1 handle set", errno: .EINVAL,
            source: "\(addfb) framebuffer_check: unused plane handles"
        ) { k, f throws(KernelError) in
            var request = f.request(modifiers: [0, 0, 0, 0])
            request.handles[1] = f.dumb
            _ = try k.drmAddFramebuffer(f.vkms, request)
        },
        DRMBadInput(
            name: "AddFB2 with plane-1 pitch set", errno: .EINVAL,
            source: "\(addfb) framebuffer_check: unused plane pitches"
        ) { k, f throws(KernelError) in
            var request = f.request(modifiers: [0, 0, 0, 0])
            request.pitches[1] = f.pitch
            _ = try k.drmAddFramebuffer(f.vkms, request)
        },
        DRMBadInput(
            name: "AddFB2 with plane-1 modifier set", errno: .EINVAL,
            source: "\(addfb) framebuffer_check: unused plane modifiers"
        ) { k, f throws(KernelError) in
            _ = try k.drmAddFramebuffer(f.vkms, f.request(modifiers: [0, 1, 0, 0]))
        },
        DRMBadInput(
            name: "AddFB2 on vgem (no modesetting)", errno: .EOPNOTSUPP,
            source: "\(addfb) drm_mode_addfb2: DRIVER_MODESET"
        ) { k, f throws(KernelError) in
            let dumb = try k.drmCreateDumb(f.vgem, width: DRMFixture.size, height: DRMFixture.size, bitsPerPixel: 32)
            defer { try? k.drmDestroyDumb(f.vgem, dumb.handle) }
            _ = try k.drmAddFramebuffer(f.vgem, f.request(handle: dumb.handle.rawValue))
        },
        DRMBadInput(
            name: "PRIME export with invalid flags", errno: .EINVAL,
            source: "drm_prime.c drm_prime_handle_to_fd_ioctl: flags"
        ) { k, f throws(KernelError) in
            _ = try k.drmPrimeHandleToFD(f.vkms, f.dumb, flags: PrimeFlags(rawValue: 0x1))
        },
        DRMBadInput(
            name: "PRIME export of a closed handle", errno: .ENOENT,
            source: "drm_prime.c drm_gem_prime_handle_to_fd: lookup"
        ) { k, f throws(KernelError) in
            let dumb = try k.drmCreateDumb(f.vkms, width: 64, height: 64, bitsPerPixel: 32)
            try k.drmDestroyDumb(f.vkms, dumb.handle)
            _ = try k.drmPrimeHandleToFD(f.vkms, dumb.handle, flags: PrimeFlags.closeOnExec)
        },
        DRMBadInput(
            name: "PRIME import of a non-dma-buf fd", errno: .EINVAL,
            source: "dma-buf.c dma_buf_get: not a dma-buf file"
        ) { k, f throws(KernelError) in
            _ = try k.drmPrimeFDToHandle(f.vkms, dmaBuf: f.vgem)
        },
        DRMBadInput(name: "GEM_CLOSE of an unknown handle", errno: .EINVAL, source: "drm_gem.c drm_gem_handle_delete") {
            k, f throws(KernelError) in
            try k.drmGEMClose(f.vkms, GEMHandle(rawValue: 0xdead))
        },
        DRMBadInput(
            name: "atomic commit without the atomic cap", errno: .EINVAL,
            source: "drm_atomic_uapi.c: !file_priv->atomic"
        ) { k, f throws(KernelError) in
            let crtc = try k.drmResources(f.vkms).crtcs[0]
            try k.drmAtomicCommit(
                f.vkms, [DRMAtomicProperty(object: crtc.object, property: PropertyID(rawValue: 1), value: 0)],
                flags: [], userData: 0)
        },
        DRMBadInput(
            name: "RMFB of an unknown framebuffer", errno: .ENOENT, source: "drm_framebuffer.c drm_mode_rmfb: lookup"
        ) { k, f throws(KernelError) in
            try k.drmRemoveFramebuffer(f.vkms, FramebufferID(rawValue: 0xdead))
        },
    ]

    /// Runs one row: the errno must match, and no framebuffer, fd or mapping may be left.
    static func check(_ row: DRMBadInput, on kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            try DRMFixture.with(kernel) { fixture in
                let before = try DRMCases.framebufferCount(kernel, fixture.vkms)
                expectKernelError(row.errno) { () throws(KernelError) in try row.run(kernel, fixture) }
                #expect(try DRMCases.framebufferCount(kernel, fixture.vkms) == before, "a framebuffer was left behind")
            }
        }
    }
}
