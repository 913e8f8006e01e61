import DmaBufKit
import DmaBufSimulation
import Testing

/// The library example in README.md, on the simulated kernel: keeps the README true.
@Test func readmeExampleRuns() throws {
    let kernel = SimulatedKernel()
    let heap = try DmaHeap("system", kernel: kernel)
    let frame = try heap.allocate(length: 1 << 20, name: "frame-0")
    try frame.write { pixels in pixels.initializeMemory(as: UInt8.self, repeating: 0x80) }
    #expect(try frame.info().name == "frame-0")

    let memfd = try Memfd(kernel: kernel, name: "staging", length: 1 << 20)
    let shared = try UdmabufDevice(kernel: kernel).create(from: memfd)
    #expect(shared.length == 1 << 20)

    let fence = try frame.exportSyncFile(for: .read)
    #expect(try fence.wait(timeout: .milliseconds(16)))

    let vkms = try DRMDevice(driver: "vkms", kernel: kernel)
    let pipe = try DisplayPipe(device: vkms)
    let (width, height) = (Int(pipe.mode.hdisplay), Int(pipe.mode.vdisplay))
    let pixels = try heap.allocate(length: width * height * 4)
    let scanout = try vkms.importBuffer(pixels)
    let framebuffer = try vkms.addFramebuffer(
        DRMFramebufferRequest(
            width: UInt32(width), height: UInt32(height), format: DRMFormat.xrgb8888,
            handles: [scanout.handle], pitches: [UInt32(width * 4)]))
    let shown = try pipe.show(framebuffer, on: vkms)
    #expect(try shown.onScreen?.wait(timeout: .seconds(1)) == true)
}
