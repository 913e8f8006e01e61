import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// The mem2mem node `name` as a stage: RGB24 in (importing the `inputs` capture buffers),
    /// RGB565 out (its own buffers, exported into slots appended to `slots`, for the display).
    func mem2memStage(
        _ name: String, inputs: Int, into slots: inout [PipelineSlot]
    ) throws -> (device: OwnedVideoDevice, stage: Mem2MemStage) {
        let settings = configuration
        let node = OwnedVideoDevice(try V4L2Device(name: name, kernel: kernel))
        do {
            guard node.capability.deviceCaps.contains(.videoMem2Mem) else {
                throw PipelineError(path: node.path, "\(name) is not a single-planar mem2mem node")
            }
            let input = try node.with { try setFormat($0, type: .videoOutput, V4L2PixelFormat.rgb24) }
            let output = try node.with { try setFormat($0, type: .videoCapture, Self.rgb565.v4l2) }
            let inputQueue = OwnedQueue(
                try node.with { try V4L2Queue(device: $0, type: .videoOutput, memory: .dmabuf, count: inputs) })
            let outputQueue = OwnedQueue(
                try node.with {
                    try V4L2Queue(device: $0, type: .videoCapture, memory: .mmap, count: settings.buffers)
                })
            let first = slots.count
            try outputQueue.exportAll(into: &slots)
            for slot in slots[first...] { slot.pitch = Int(output.planes[0].bytesPerLine) }
            let stage = Mem2MemStage(
                name: node.path, node: node, input: inputQueue, output: outputQueue, slots: Array(slots[first...]),
                bytesUsed: input.planes[0].sizeImage, frames: settings.frames)
            return (node, stage)
        } catch {
            try? node.close()
            throw error
        }
    }
}
