import Foundation
import Logging

/// Runs `body`, which throws untyped (CPU-access closures), keeping KernelErrors as they are.
func rethrowingKernelErrors<R>(_ operation: String, _ body: () throws -> R) throws(KernelError) -> R {
    do { return try body() } catch let error as KernelError { throw error } catch { throw KernelError(operation, .EIO, reason: "\(error)") }
}

/// One buffer of a run and what each side holds of it; released in order (framebuffer, GEM
/// handle, dma-buf) when the run ends, however it ends.
final class PipelineSlot {
    var dmaBuf: DmaBuf?
    var gem: GEMBuffer?
    /// A dumb buffer made for this slot, before the display's framebuffer takes it.
    var ownGEM: GEMBuffer?
    var framebuffer: Framebuffer?
    var pitch = 0

    var hasDmaBuf: Bool { switch dmaBuf { case .some: true; case .none: false } }

    func withDmaBuf<R: ~Copyable>(_ body: (borrowing DmaBuf) throws(KernelError) -> R) throws(KernelError) -> R {
        switch dmaBuf {
        case .some(let buffer): return try body(buffer)
        case .none: throw KernelError("pipeline", .EBADF, reason: "this buffer has no dma-buf")
        }
    }

    func withGEM<R: ~Copyable>(_ body: (borrowing GEMBuffer) throws(KernelError) -> R) throws(KernelError) -> R {
        switch gem {
        case .some(let buffer): return try body(buffer)
        case .none: throw KernelError("pipeline", .EBADF, reason: "this buffer has no GEM handle")
        }
    }

    func addFramebuffer(_ make: (borrowing GEMBuffer) throws(KernelError) -> Framebuffer) throws(KernelError) {
        framebuffer = try withGEM(make)
    }

    func framebufferID() throws(KernelError) -> FramebufferID {
        switch framebuffer {
        case .some(let framebuffer): return framebuffer.id
        case .none: throw KernelError("pipeline", .EBADF, reason: "this buffer has no framebuffer")
        }
    }

    func close(_ logger: Logger) {
        do {
            if let framebuffer = framebuffer.take() { try framebuffer.remove() }
            if let gem = gem.take() { try gem.close() }
            if let gem = ownGEM.take() { try gem.close() }
            if let dmaBuf = dmaBuf.take() { try dmaBuf.close() }
        } catch { logger.warning("releasing a pipeline buffer: \(error)") }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

