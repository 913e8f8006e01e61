import DmaBufKit
import Testing

/// Capture → display pipelines, proven by the pixels the display wrote back. Each case runs
/// on the simulated kernel and, in the VM, on vivid and vkms.
enum PipelineCases {
    static func configuration(_ strategy: PipelineConfiguration.Strategy, _ allocator: PipelineConfiguration.Allocator = .systemHeap, frames: Int) -> PipelineConfiguration {
        PipelineConfiguration(strategy: strategy, allocator: allocator, frames: frames, framesPerSecond: 30, verifyEvery: 1)
    }

    /// Every frame shown and verified pixel-exact; zero-copy strategies copy nothing.
    static func runsVerified(_ kernel: any Kernel, _ strategy: PipelineConfiguration.Strategy, _ allocator: PipelineConfiguration.Allocator, frames: Int) throws {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(configuration(strategy, allocator, frames: frames), kernel: kernel).run()
            #expect(report.passed, "\(report.summary)")
            #expect(report.framesShown == frames && report.framesVerified == frames && report.framesMismatched == 0 && report.blankFrames == 0)
            #expect(report.copying == (strategy == .copy))
            #expect(report.bytesCopied == (strategy == .copy ? frames * 640 * 480 * 4 : 0))
            #expect(report.drops == 0, "\(report.summary)")
        }
    }

    /// A source showing black: every call succeeds, and the run fails because the frames are blank.
    static func blackFramesFail(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            var settings = configuration(.export, frames: 5)
            settings.testPattern = 5  // vivid's "100% Black"
            let report = try Pipeline(settings, kernel: kernel).run()
            #expect(!report.passed)
            #expect(report.blankFrames == 5 && report.failures.contains { $0.contains("blank") }, "\(report.failures)")
        }
    }

    /// udmabuf buffers cannot be queued into vivid on 6.1: the run ends at set-up with the
    /// reason, releasing what it made.
    static func udmabufImportStopsWithTheReason(_ kernel: any Kernel) throws {
        guard try kernel.kernelRelease().hasPrefix("6.1.") else { return }
        expectNoLeaks(kernel) {
            let error = expectKernelError(.EFAULT) { _ = try Pipeline(configuration(.import, .udmabuf, frames: 5), kernel: kernel).run() }
            #expect(error?.reason?.contains("vmap") == true, "\(String(describing: error))")
        }
    }

    /// A size the display has no mode for, and a source that does not exist: clear errors.
    static func impossibleRunsSayWhy(_ kernel: any Kernel) throws {
        expectNoLeaks(kernel) {
            var settings = configuration(.export, frames: 5)
            settings.width = 320
            settings.height = 180
            let noMode = expectKernelError(.ENODEV) { _ = try Pipeline(settings, kernel: kernel).run() }
            #expect(noMode?.reason?.contains("320x180") == true, "\(String(describing: noMode))")
            settings = configuration(.export, frames: 5)
            settings.source = "no-such-camera"
            let noSource = expectKernelError(.ENOENT) { _ = try Pipeline(settings, kernel: kernel).run() }
            #expect(noSource?.reason?.contains("no-such-camera") == true)
        }
    }
}

@Suite("Pipelines on the simulated kernel")
struct SimulatedPipelineTests {
    @Test(arguments: [(PipelineConfiguration.Strategy.export, PipelineConfiguration.Allocator.systemHeap), (.import, .systemHeap), (.import, .dumb), (.copy, .systemHeap)])
    func verified(_ strategy: PipelineConfiguration.Strategy, _ allocator: PipelineConfiguration.Allocator) throws {
        try PipelineCases.runsVerified(SimulatedKernel(), strategy, allocator, frames: 10)
    }
    @Test func blackFramesFail() throws { try PipelineCases.blackFramesFail(SimulatedKernel()) }
    @Test func udmabufImport() throws { try PipelineCases.udmabufImportStopsWithTheReason(SimulatedKernel()) }
    @Test func impossibleRuns() throws { try PipelineCases.impossibleRunsSayWhy(SimulatedKernel()) }
}

extension DeviceTests {
@Suite("Pipelines on the real kernel", .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
struct PipelineOnDevices {
    @Test(arguments: [(PipelineConfiguration.Strategy.export, PipelineConfiguration.Allocator.systemHeap), (.import, .systemHeap), (.import, .dumb), (.copy, .systemHeap)])
    func verified(_ strategy: PipelineConfiguration.Strategy, _ allocator: PipelineConfiguration.Allocator) throws {
        try PipelineCases.runsVerified(LinuxKernel(), strategy, allocator, frames: 30)
    }
    @Test func blackFramesFail() throws { try PipelineCases.blackFramesFail(LinuxKernel()) }
    @Test func udmabufImport() throws { try PipelineCases.udmabufImportStopsWithTheReason(LinuxKernel()) }
    @Test func impossibleRuns() throws { try PipelineCases.impossibleRunsSayWhy(LinuxKernel()) }
}
}
