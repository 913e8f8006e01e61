import DmaBufKernel

/// A file as a sink: each frame's picture (or compressed frame) read through its dma-buf under
/// SYNC (a CPU copy) and appended; every n-th picture checked for showing a picture (not one
/// flat colour below the counter rows). The frame is released as soon as it is written.
final class FileSinkStage: FrameConsumer, FrameArrivals, Metered {
    let output: TemporaryOutput
    let size: Int
    let pitch: Int
    let width: Int
    let height: Int
    let verifyEvery: Int
    private(set) var written = 0
    private(set) var bytesWritten = 0
    private(set) var checked = 0
    private(set) var blank = 0
    private var latencies: [Duration] = []
    let meter: StageMeter

    init(output: TemporaryOutput, size: Int, pitch: Int, width: Int, height: Int, verifyEvery: Int) {
        (self.output, self.size, self.pitch, self.width, self.height) = (output, size, pitch, width, height)
        self.verifyEvery = verifyEvery
        meter = StageMeter("file \(output.target)")
    }

    var canAccept: Bool { true }

    func accept(_ frame: Frame) throws {
        meter.took(frame)
        defer {
            meter.letGo(frame)
            meter.passedOn()
        }
        // A compressed frame carries its own length; a picture is `size` bytes.
        let size = frame.bytesUsed.map(Int.init) ?? size
        let bytes = try frame.slot.withDmaBuf { buffer throws in try buffer.read { Array($0.prefix(size)) } }
        try output.write(bytes)
        bytesWritten += bytes.count
        if verifyEvery > 0 && written % verifyEvery == 0 && frame.bytesUsed == nil {
            checked += 1
            if isFlat(bytes) { blank += 1 }
        }
        written += 1
        latencies.append(Pipeline.monotonicNow() - frame.timestamp)
        try frame.release()
    }

    /// One colour from the counter rows down.
    private func isFlat(_ bytes: [UInt8]) -> Bool {
        let top = min(Pipeline.counterRows, height - 1)
        let first = bytes[(top * pitch)...].prefix(3)
        return (top..<height).allSatisfy { y in
            stride(from: y * pitch, to: y * pitch + width * 4, by: 4).allSatisfy {
                bytes[$0..<($0 + 3)].elementsEqual(first)
            }
        }
    }

    func takeLatencies(_ each: (Duration) -> Void) {
        latencies.forEach(each)
        latencies.removeAll(keepingCapacity: true)
    }
}
