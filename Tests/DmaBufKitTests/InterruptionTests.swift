import DmaBufKit
import DmaBufSimulation
import Foundation
import Testing

extension PipelineCases {
    /// Every topology, stopped at its fourth frame as a signal would stop it: the run ends at
    /// that frame boundary, returns a report marked interrupted (not thrown away), and leaves
    /// nothing behind: descriptors, mappings, framebuffers, queues (a second run of the same
    /// topology streams again), and no file sink output.
    static func stoppedRunsReleaseEverything(_ kernel: any Kernel) throws {
        let output = try TemporaryDirectory()
        var topologies: [(String, PipelineConfiguration)] = [
            ("export", configuration(.export, frames: 300)),
            ("import", configuration(.import, frames: 300)),
            ("copy", configuration(.copy, frames: 300)),
            (
                "pattern",
                PipelineConfiguration(source: PipelineConfiguration.patternSource, strategy: .import, frames: 300)
            ),
            (
                "file",
                PipelineConfiguration(
                    sink: "file:\(output.path)/frames.raw", frames: 300, framesPerSecond: 10, buffers: 8,
                    verifyEvery: 0,
                    expectations: .init(verified: false))
            ),
            (
                "video output",
                PipelineConfiguration(
                    source: PipelineConfiguration.patternSource, sink: "vivid-000-vid-out", strategy: .import,
                    width: 720, height: 576, frames: 300, verifyEvery: 0, expectations: .init(verified: false))
            ),
            ("video output through its loop", loopbackSettings(frames: 300)),
        ]
        var mem2mem = PipelineConfiguration(
            frames: 300, framesPerSecond: 5, buffers: 16, verifyEvery: 0, mem2mem: "vim2m",
            expectations: .init(verified: false))
        mem2mem.testPattern = 0
        topologies.append(("mem2mem", mem2mem))
        var codec = PipelineConfiguration(
            frames: 300, framesPerSecond: 5, buffers: 6, verifyEvery: 0, expectations: .init(verified: false))
        (codec.encoder, codec.decoder) = ("stateful-encoder", "stateful-decoder")
        topologies.append(("codec round trip", codec))
        for (name, settings) in topologies {
            try expectNoLeaks(kernel) {
                var asked = 0
                var pipeline = Pipeline(settings, kernel: kernel)
                pipeline.stopRequest = {
                    asked += 1
                    return asked > 3 ? SIGINT : nil
                }
                let report = try pipeline.run()
                #expect(report.interruptedBy == "SIGINT", "\(name): \(report.summary)")
                #expect(report.framesShown <= 3, "\(name): stopped at the frame boundary: \(report.summary)")
                #expect(
                    !report.passed && report.failures.contains { $0.contains("interrupted by SIGINT") },
                    "\(name): \(report.failures)")
                // The queues were released: the same topology starts again at once.
                var again = settings
                again.frames = 2
                #expect(try Pipeline(again, kernel: kernel).run().framesShown == 2, "\(name) runs again")
            }
        }
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: output.path) == ["frames.raw"],
            "only the completed run wrote its file")
    }
}

@Suite("Interrupted runs")
struct InterruptionTests {
    /// The probe stops between checks: what it did not try is skipped, the report is marked.
    @Test func aStoppedProbeReportsWhatItFound() {
        var asked = 0
        var probe = Probe(kernel: SimulatedKernel())
        probe.stopRequest = {
            asked += 1
            return asked > 2 ? SIGTERM : nil
        }
        let report = probe.run(matrix: true)
        #expect(report.interruptedBy == "SIGTERM")
        #expect(report.exitCode == ExitStatus.interrupted(by: SIGTERM))
        #expect(report.heaps.status == .ok && report.udmabuf.status == .ok, "the checks before the signal ran")
        #expect(report.drm.status == .skipped && report.matrix == nil, "\(report.text)")
        #expect(report.text.contains("INTERRUPTED by SIGTERM"))
    }
}
