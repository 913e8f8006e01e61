import DmaBufKit
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
}
