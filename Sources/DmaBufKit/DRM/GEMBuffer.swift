import DmaBufKernel

/// One share of a GEM handle on an open DRM device: a dumb buffer it created, or a dma-buf it
/// imported. Closing releases the share; the handle itself is closed with its last share
/// (`DRM_IOCTL_MODE_DESTROY_DUMB` or `DRM_IOCTL_GEM_CLOSE`).
public struct GEMBuffer: ~Copyable, Sendable {
    let state: DRMFileState
    public let handle: GEMHandle
    /// Bytes: the dumb buffer's size, or the imported dma-buf's.
    public let size: Int
    /// Bytes per row of a dumb buffer; nil for an import (its layout is the exporter's).
    public let pitch: Int?
    private var released = false

    init(state: DRMFileState, handle: GEMHandle, size: Int, pitch: Int?) {
        (self.state, self.handle, self.size, self.pitch) = (state, handle, size, pitch)
    }

    public consuming func close() throws(KernelError) {
        released = true
        try state.release(handle)
    }

    deinit {
        if !released { try? state.release(handle) }
    }
}

/// A framebuffer: planes of GEM buffers in a pixel format, ready to scan out or write back
/// into. Removing it (`DRM_IOCTL_MODE_RMFB`) also turns off any plane that shows it.
public struct Framebuffer: ~Copyable, Sendable {
    public let id: FramebufferID
    public let width: Int
    public let height: Int
    let state: DRMFileState
    private var removed = false

    init(id: FramebufferID, width: Int, height: Int, state: DRMFileState) {
        (self.id, self.width, self.height, self.state) = (id, width, height, state)
    }

    public consuming func remove() throws(KernelError) {
        removed = true
        guard state.isOpen else { return }
        do { try state.kernel.drmRemoveFramebuffer(state.fd, id) } catch { throw error.at(state.path) }
    }

    /// `DRM_IOCTL_MODE_CLOSEFB` (Linux 6.8): removes it from this file without turning off a
    /// plane that shows it (the plane keeps it until it shows another), so a client can hand
    /// over the screen without a blank. Where the kernel has no CLOSEFB (EINVAL) the owner is
    /// gone all the same: it removes the framebuffer (RMFB), which turns off a plane showing it.
    public consuming func close() throws(KernelError) {
        guard state.isOpen else {
            removed = true
            return
        }
        do { try state.kernel.drmCloseFramebuffer(state.fd, id) } catch { throw error.at(state.path) }
        removed = true
    }

    deinit {
        if !removed, state.isOpen { try? state.kernel.drmRemoveFramebuffer(state.fd, id) }
    }
}
