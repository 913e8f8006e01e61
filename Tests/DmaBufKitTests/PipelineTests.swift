import CLibPNG
import DmaBufKit
import DmaBufSimulation
import Foundation
import Logging
import Testing

/// Capture → display pipelines, proven by the pixels the display wrote back. Each case runs
/// on the simulated kernel and, in the VM, on vivid and vkms.
enum PipelineCases {
    static func configuration(
        _ strategy: PipelineConfiguration.Strategy, _ allocator: PipelineConfiguration.Allocator = .systemHeap,
        frames: Int, verifyEvery: Int = 1
    ) -> PipelineConfiguration {
        // 8 buffers absorb the stall of a verified frame (a debug build under TCG compares
        // 640x480 in about a frame period); at 10 fps vivid's own thread keeps its period on
        // an emulated CPU (at 15 it woke late enough to skip a sequence number now and then).
        PipelineConfiguration(
            strategy: strategy, allocator: allocator, frames: frames, framesPerSecond: 10, buffers: 8,
            verifyEvery: verifyEvery)
    }

    /// Every frame shown, every `verifyEvery`-th one verified pixel-exact, none dropped at
    /// 10 frames per second (what a debug build and vivid keep up with under TCG); zero-copy
    /// strategies copy nothing.
    static func runsVerified(
        _ kernel: any Kernel, _ strategy: PipelineConfiguration.Strategy, _ allocator: PipelineConfiguration.Allocator,
        frames: Int, verifyEvery: Int
    ) throws {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(
                configuration(strategy, allocator, frames: frames, verifyEvery: verifyEvery), kernel: kernel
            ).run()
            #expect(report.passed, "\(report.summary)")
            let verified = (frames + verifyEvery - 1) / verifyEvery
            #expect(
                report.framesShown == frames && report.framesVerified == verified && report.framesMismatched == 0
                    && report.blankFrames == 0)
            #expect(report.copying == (strategy == .copy))
            #expect(report.bytesCopied == (strategy == .copy ? frames * 640 * 480 * 4 : 0))
            #expect(report.drops == 0 && report.unchangedFrames == 0, "\(report.summary)")
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

    /// udmabuf buffers into vivid and on to vkms: where the kernel's udmabuf has vmap (6.2 on)
    /// the run passes pixel-verified; where it has none (6.1) it ends at set-up with the reason
    /// (QBUF EFAULT), releasing what it made. Which one is tried first, not read from the release.
    static func udmabufImportRunsOrStopsWithTheReason(_ kernel: any Kernel) throws {
        let maps = try udmabufMapsInTheKernel(kernel)
        try expectNoLeaks(kernel) {
            if maps {
                let report = try Pipeline(configuration(.import, .udmabuf, frames: 5), kernel: kernel).run()
                #expect(report.passed && report.framesVerified > 0 && report.framesMismatched == 0, "\(report.summary)")
            } else {
                let error = expectKernelError(.EFAULT) {
                    _ = try Pipeline(configuration(.import, .udmabuf, frames: 5), kernel: kernel).run()
                }
                #expect(error?.reason?.contains("vmap") == true, "\(String(describing: error))")
            }
        }
    }

    /// A size the display has no mode for, and a source that does not exist: clear errors.
    static func impossibleRunsSayWhy(_ kernel: any Kernel) throws {
        expectNoLeaks(kernel) {
            var settings = configuration(.export, frames: 5)
            settings.width = 320
            settings.height = 180
            let noMode = expectError(DisplayError.self) { _ = try Pipeline(settings, kernel: kernel).run() }
            #expect(noMode?.problem.contains("320x180") == true, "\(String(describing: noMode))")
            settings = configuration(.export, frames: 5)
            settings.source = "no-such-camera"
            let noSource = expectKernelError(.ENOENT) { _ = try Pipeline(settings, kernel: kernel).run() }
            #expect(noSource?.reason?.contains("no-such-camera") == true)
            // vim2m's capture side has no XR24: the format the display needs is refused by name.
            settings = configuration(.export, frames: 5)
            settings.source = "vim2m"
            let wrongFormat = expectError(PipelineError.self) { _ = try Pipeline(settings, kernel: kernel).run() }
            #expect(wrongFormat?.problem.contains("cannot take") == true, "\(String(describing: wrongFormat))")
        }
    }
}

@Suite("Pipelines on the simulated kernel")
struct SimulatedPipelineTests {
    @Test(arguments: SimulatedKernel.Version.allCases, PipelineCases.shared)
    func shared(_ version: SimulatedKernel.Version, _ kernelCase: KernelCase) throws {
        try kernelCase.run(on: SimulatedKernel(version: version))
    }

    /// allocator auto reports its choice; an expectation it misses fails the run, saying why.
    @Test func autoChoosesPerDeviceAndIsJudged() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            var vmalloc = PipelineCases.configuration(.import, .auto, frames: 5)
            let chose = try Pipeline(vmalloc, kernel: kernel).run()
            #expect(chose.passed && chose.configuration.allocator == .systemHeap, "\(chose.summary)")
            #expect(
                chose.allocatorChoice?.hasPrefix("system-heap: ") == true
                    && chose.summary.contains("(auto: system-heap)"))

            var contiguous = vmalloc
            contiguous.source = "vivid-002-vid-cap"
            contiguous.expectations.allocator = .systemHeap
            let missed = try Pipeline(contiguous, kernel: kernel).run()
            #expect(missed.configuration.allocator == .reservedHeap)
            #expect(
                missed.failures.contains { $0.hasPrefix("allocator auto chose reserved-heap, not system-heap") },
                "\(missed.failures)")
            vmalloc.mem2mem = "vim2m"
            #expect(throws: ConfigurationError.self) { try vmalloc.validate() }
        }
    }
}

extension DeviceTests {
    @Suite(
        "Pipelines on the real kernel", .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
    struct PipelineOnDevices {
        @Test(arguments: PipelineCases.shared)
        func shared(_ kernelCase: KernelCase) throws { try kernelCase.run(on: LinuxKernel()) }
    }
}

extension PipelineCases {
    /// Pipeline behaviour every kernel must show: the strategies verified through writeback,
    /// failures for their reasons, and nothing left behind.
    static let shared: [KernelCase] =
        [
            (PipelineConfiguration.Strategy.export, PipelineConfiguration.Allocator.systemHeap), (.import, .systemHeap),
            (.import, .dumb), (.copy, .systemHeap),
        ].map { strategy, allocator in
            KernelCase("\(strategy.rawValue) from \(allocator.rawValue) runs verified") { kernel in
                // On a kernel that paces frames (a debug build under TCG compares a 640x480 frame
                // in about a frame period) every 10th of 60 frames; unpaced, every one of 10.
                let (frames, verifyEvery) = kernel.pacesFrames ? (60, 10) : (10, 1)
                try runsVerified(kernel, strategy, allocator, frames: frames, verifyEvery: verifyEvery)
            }
        } + [
            KernelCase("black frames fail verification") { try blackFramesFail($0) },
            KernelCase("udmabuf import runs verified, or stops with the reason") {
                try udmabufImportRunsOrStopsWithTheReason($0)
            },
            KernelCase("impossible runs say why") { try impossibleRunsSayWhy($0) },
            KernelCase("the sharing matrix agrees with the pipelines") { try matrixAgreesWithPipelines($0) },
            KernelCase("dumped frames show the bars") { try dumpedFramesShowTheBars($0) },
            KernelCase("busy and vanishing sources end cleanly") { try busyAndVanishingSourcesEndCleanly($0) },
            KernelCase("a file sink writes the frames") { try fileSinkWritesTheFrames($0) },
            KernelCase("a V4L2 output sink takes the pattern") { try videoOutputSinkTakesThePattern($0) },
            KernelCase("the loopback verifies an output sink") { try loopbackVerifiesTheOutput($0) },
            KernelCase("a picture changed in the loop fails verification") { try changedLoopFails($0) },
            KernelCase("a tee shows and outputs every buffer, both verified") { try teeVerifiesBothPaths($0) },
            KernelCase("a tee too short of buffers for its output stalls, saying why") {
                try teeTooShortOfBuffersSaysWhyItStalled($0)
            },
            KernelCase("stopped runs release everything") { try stoppedRunsReleaseEverything($0) },
        ]
}

/// The scenario suite in Tests/Scenarios, on the simulated kernel (the VM runs it with
/// dmabuf-pipe): every scenario passes, the must-fail ones by failing for their reason.
@Suite("Scenarios on the simulated kernel")
struct SimulatedScenarioTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scenarios")
    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
        $0.hasSuffix(".yaml")
    }.sorted()

    @Test func theSuiteHasWhatItPromises() throws {
        let scenarios = try Self.files.map { try PipelineScenario.load(Self.directory.appendingPathComponent($0).path) }
        let strategies = Set(scenarios.map(\.pipeline.strategy))
        #expect(strategies == Set(PipelineConfiguration.Strategy.allCases))
        #expect(
            Set(scenarios.filter { $0.pipeline.strategy == .import }.map(\.pipeline.allocator))
                == Set(PipelineConfiguration.Allocator.allCases))
        #expect(
            scenarios.contains { $0.expectFailure != nil && $0.pipeline.testPattern == 5 },
            "a scenario that must fail on blank frames")
        #expect(
            scenarios.contains { $0.expectFailure != nil && $0.pipeline.injectStuckDisplay != nil },
            "a scenario that must fail on a stale frame")
        #expect(scenarios.contains { $0.pipeline.mem2mem != nil && $0.expectFailure == nil }, "a mem2mem stage")
        #expect(scenarios.contains { $0.pipeline.source == "vivid-001-vid-cap" }, "a multi-planar source")
        #expect(
            scenarios.contains {
                $0.pipeline.allocator == .auto && $0.pipeline.expectations.allocator == .reservedHeap
            }, "allocator auto choosing CMA for a camera that needs contiguous memory")
        #expect(
            scenarios.contains { $0.pipeline.source == PipelineConfiguration.patternSource && $0.expectFailure == nil },
            "the pattern source")
        let outputs = scenarios.filter { $0.pipeline.sink.hasSuffix("-vid-out") && $0.pipeline.verifyEvery > 0 }
        #expect(
            outputs.contains { $0.pipeline.source == PipelineConfiguration.patternSource },
            "the pattern into an output node, verified through the loopback")
        #expect(
            outputs.contains { $0.pipeline.source.hasSuffix("-vid-cap") && $0.pipeline.strategy == .export },
            "a capture node into an output node (V4L2 → V4L2), verified through the loopback")
        #expect(
            scenarios.contains { $0.pipeline.tee != nil && $0.expectFailure == nil && $0.pipeline.verifyEvery > 0 },
            "a tee: one buffer shown and output at once, both verified")
        #expect(
            scenarios.contains { $0.pipeline.tee != nil && $0.expectFailure != nil },
            "a tee whose second consumer cannot import the buffers, refused before streaming")
    }

    @Test(arguments: files)
    func scenario(_ file: String) throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let output = try TemporaryDirectory()
            let scenario = try PipelineScenario.load(Self.directory.appendingPathComponent(file).path).placingFiles(
                under: output.path)
            let result = scenario.run(kernel: kernel, logger: Logger(label: "test"))
            #expect(result.passed, "\(result.reason)")
        }
    }
}

extension PipelineCases {
    /// dmabuf-probe's sharing matrix agrees with what pipelines find: the cells a strategy
    /// relies on are ok exactly when its run starts, and udmabuf's cells agree with its vmap.
    static func matrixAgreesWithPipelines(_ kernel: any Kernel) throws {
        let matrix = Probe(kernel: kernel).sharingMatrix()
        let vkms = "prime+addfb2:vkms", vivid = "qbuf:vivid-000-vid-cap"
        let expectations: [(PipelineConfiguration.Strategy, PipelineConfiguration.Allocator, [(String, String)])] = [
            (.export, .systemHeap, [("expbuf:vivid-000-vid-cap", vkms)]),
            (.import, .systemHeap, [("system-heap", vivid), ("system-heap", vkms)]),
            (.import, .reservedHeap, [("reserved-heap", vivid), ("reserved-heap", vkms)]),
            (.import, .dumb, [("dumb:vkms", vivid), ("dumb:vkms", vkms)]),
            (.import, .udmabuf, [("udmabuf", vivid), ("udmabuf", vkms)]),
        ]
        for (strategy, allocator, cells) in expectations {
            let statuses = cells.map { matrix.cell($0.0, $0.1)?.status }
            var started = true
            do {
                _ = try Pipeline(configuration(strategy, allocator, frames: 3, verifyEvery: 0), kernel: kernel).run()
            } catch { started = false }
            #expect(
                statuses.allSatisfy { $0 == .ok } == started,
                "\(strategy) \(allocator): cells \(statuses), pipeline started: \(started)")
        }
        // Both importers map the buffer in the kernel: both cells follow udmabuf's vmap, found by
        // its own try (vkms's through the matrix's scanout, not its import).
        let maps = try udmabufMapsInTheKernel(kernel)
        for importer in [vivid, vkms] {
            let cell = matrix.cell("udmabuf", importer)
            #expect(cell?.status == (maps ? .ok : .unsupported), "udmabuf → \(importer): \(String(describing: cell))")
            if !maps { #expect(cell?.reason?.contains("vmap") == true, "\(String(describing: cell?.reason))") }
        }
        // Every refusal in the whole matrix has a found cause, and each holds when tried alone.
        try ProbeCases.expectRequirementsHold(matrix, on: kernel)
    }
}

extension PipelineCases {
    /// --dump-frames writes real PNGs (read back here with libpng) of the shown buffer and the
    /// writeback: the same picture, vivid's 75% bars.
    static func dumpedFramesShowTheBars(_ kernel: any Kernel) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dmabufkit-dump-\(getpid())-\(kernel.kind)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var settings = configuration(.export, frames: 3, verifyEvery: 2)
        settings.dumpDirectory = directory
        let report = try Pipeline(settings, kernel: kernel).run()
        #expect(report.passed, "\(report.summary)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
                == [
                    "frame-0000-shown.png", "frame-0000-writeback.png", "frame-0002-shown.png",
                    "frame-0002-writeback.png",
                ])
        func picture(_ name: String) throws -> [UInt8] {
            var width: UInt32 = 0, height: UInt32 = 0
            try #require(
                dmabufkit_png_read_rgb("\(directory)/\(name)", &width, &height, nil, 0) == 0, "\(name) is a PNG")
            #expect(width == 640 && height == 480)
            var rgb = [UInt8](repeating: 0, count: Int(width * height * 3))
            try #require(dmabufkit_png_read_rgb("\(directory)/\(name)", &width, &height, &rgb, rgb.count) == 0)
            return rgb
        }
        let shown = try picture("frame-0000-shown.png"), written = try picture("frame-0000-writeback.png")
        #expect(shown == written, "the written-back picture is the one shown")
        let row = 240 * 640 * 3
        #expect(Array(shown[(row + 40 * 3)..<(row + 40 * 3 + 3)]) == [0xbf, 0xbf, 0xbf], "75% white on the left")
        #expect(
            Array(shown[(row + 520 * 3)..<(row + 520 * 3 + 3)]) == [0x00, 0x00, 0xbf], "75% blue in the seventh bar")
    }
}

extension PipelineCases {
    /// A source another open already streams from: the run stops at set-up with EBUSY and why.
    /// A source that goes away mid-run (vivid's disconnect at frame 3): the run ends with
    /// ENODEV, and in both cases nothing is left behind (the node works again afterwards).
    static func busyAndVanishingSourcesEndCleanly(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let holder = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let held = try V4L2Queue(device: holder, type: .videoCapture, memory: .mmap, count: 2)
            let busy = expectKernelError(.EBUSY) {
                _ = try Pipeline(configuration(.export, frames: 5), kernel: kernel).run()
            }
            #expect(busy?.reason?.contains("busy") == true, "\(String(describing: busy))")
            try held.release()
            try holder.close()

            let remote = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let gone = expectKernelError(.ENODEV) {
                _ = try Pipeline(configuration(.export, frames: 30, verifyEvery: 0), kernel: kernel).run { progress in
                    if progress.frame == 3 { try? remote.setControl(VividControl.disconnect, 1) }
                }
            }
            #expect(gone?.operation == "VIDIOC_DQBUF", "\(String(describing: gone))")
            try remote.close()  // the last user: vivid reconnects
            let report = try Pipeline(configuration(.export, frames: 3, verifyEvery: 1), kernel: kernel).run()
            #expect(report.passed, "\(report.summary)")
        }
    }
}

extension PipelineCases {
    /// The file sink: every frame appended raw (a CPU copy, reported), vivid's bars in it.
    static func fileSinkWritesTheFrames(_ kernel: any Kernel) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dmabufkit-file-sink-\(getpid())-\(kernel.kind).raw"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try expectNoLeaks(kernel) {
            var settings = configuration(.export, frames: 4, verifyEvery: 2)
            settings.sink = PipelineConfiguration.fileSinkPrefix + path
            let report = try Pipeline(settings, kernel: kernel).run()
            #expect(report.passed && report.copying && report.framesVerified == 2, "\(report.summary)")
            let frame = 640 * 480 * 4
            let bytes = try #require(FileManager.default.contents(atPath: path))
            #expect(bytes.count == 4 * frame && report.bytesCopied == 4 * frame)
            let pixel = (240 * 640 + 40) * 4
            #expect(
                Array(bytes[(3 * frame + pixel)..<(3 * frame + pixel + 3)]) == [0xbf, 0xbf, 0xbf],
                "75% white in the last frame")
        }
    }
}

extension PipelineCases {
    /// The V4L2 output sink unverified: vivid's output takes the pattern from heap buffers (at
    /// 720x576, its S-Video PAL size); a camera source by import is refused with the reason;
    /// udmabuf buffers work, or fail at QBUF where udmabuf has no vmap (6.1).
    static func videoOutputSinkTakesThePattern(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            var settings = PipelineConfiguration(
                source: PipelineConfiguration.patternSource, sink: "vivid-000-vid-out", strategy: .import,
                width: 720, height: 576, frames: 10, verifyEvery: 0,
                expectations: .init(verified: false))
            let report = try Pipeline(settings, kernel: kernel).run()
            #expect(report.passed && report.framesShown == 10 && report.erroneousFrames == 0, "\(report.summary)")
            var camera = settings
            camera.source = "vivid-000-vid-cap"
            let refused = expectError(PipelineError.self) { _ = try Pipeline(camera, kernel: kernel).run() }
            #expect(refused?.problem.contains("export strategy") == true, "\(String(describing: refused))")
            (settings.width, settings.height, settings.allocator) = (720, 576, .udmabuf)
            if try udmabufMapsInTheKernel(kernel) {
                let udmabuf = try Pipeline(settings, kernel: kernel).run()
                #expect(udmabuf.passed && udmabuf.framesShown == 10, "\(udmabuf.summary)")
            } else {
                expectKernelError(.EFAULT) { _ = try Pipeline(settings, kernel: kernel).run() }
            }
        }
    }
}

extension PipelineCases {
    static func loopbackSettings(frames: Int = 12) -> PipelineConfiguration {
        PipelineConfiguration(
            source: PipelineConfiguration.patternSource, sink: "vivid-000-vid-out", strategy: .import,
            allocator: .systemHeap, width: 1280, height: 720, frames: frames, buffers: 4, verifyEvery: 1)
    }

    /// The output's frames come back through vivid's loopback and are compared byte for byte:
    /// from the pattern, and from another instance's capture node (exported). Afterwards the
    /// nodes are back on the input, output and loop setting they had; a size other than the
    /// loop's timings is refused with that size.
    static func loopbackVerifiesTheOutput(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let settings = loopbackSettings()
            let report = try Pipeline(settings, kernel: kernel).run()
            #expect(report.passed && report.framesVerified > 0 && report.framesMismatched == 0, "\(report.summary)")
            #expect(report.notes.contains { $0.contains("frames sent seen") }, "\(report.notes)")
            var camera = settings
            (camera.source, camera.strategy, camera.framesPerSecond, camera.buffers) = (
                "vivid-002-vid-cap", .export, 10, 8
            )
            // About the pixels, not the pace: a slow emulated run may fall behind.
            camera.expectations = .init(maximumDrops: 0, maximumLateDrops: 1000)
            let captured = try Pipeline(camera, kernel: kernel).run()
            #expect(
                captured.passed && captured.framesVerified > 0 && captured.framesMismatched == 0, "\(captured.summary)")
            let capture = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            let output = try V4L2Device(name: "vivid-000-vid-out", kernel: kernel)
            #expect(try capture.connector(.input).index == 0 && output.connector(.output).index == 0)
            let loopSwitch = try #require(
                try capture.controls().first { $0.name == "Loop Video" || $0.name.hasSuffix("Is Connected To") })
            #expect(try capture.control(loopSwitch.id) == 0, "\(loopSwitch.name) left on")
            try capture.close()
            try output.close()
            var wrong = settings
            (wrong.width, wrong.height) = (640, 480)
            let refused = expectError(PipelineError.self) { _ = try Pipeline(wrong, kernel: kernel).run() }
            #expect(refused?.problem.contains("1280x720") == true, "\(String(describing: refused))")
        }
    }

    /// A loop whose picture is changed on the way (vivid's OSD text turned on at the capture,
    /// from another open, mid-run) fails: the frames captured are no longer the frames sent.
    static func changedLoopFails(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(loopbackSettings(frames: 16), kernel: kernel).run { progress in
                guard progress.frame == 4 else { return }
                do {
                    let other = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
                    try other.setControl(VividControl.osdTextMode, 0)
                    try other.close()
                } catch { Issue.record("turning vivid's OSD on: \(error)") }
            }
            #expect(!report.passed && report.framesMismatched > 0, "\(report.summary)")
            #expect(report.failures.contains { $0.contains("differ") }, "\(report.failures)")
        }
    }
}

extension PipelineCases {
    /// A tee: every capture buffer to vkms and to vivid's output at once, the display verified
    /// through writeback and the output through the loopback; an output that cannot import the
    /// buffers (dma-contig, given vmalloc ones) is refused before streaming, naming the output.
    static func teeVerifiesBothPaths(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            var settings = PipelineConfiguration(
                source: "vivid-002-vid-cap", sink: "vkms", strategy: .export, width: 1280, height: 720, frames: 12,
                framesPerSecond: 5, buffers: 8, verifyEvery: 4,
                // About the pixels and who holds which buffer, not the pace: at 1280x720 an
                // emulated run falls behind.
                expectations: .init(maximumDrops: 0, maximumLateDrops: 1000))
            settings.tee = "vivid-000-vid-out"
            let report = try Pipeline(settings, kernel: kernel).run()
            #expect(report.passed && report.framesMismatched == 0, "\(report.summary)")
            #expect(report.notes.contains { $0.hasPrefix("tee: 12 frames on vkms, 12 on") }, "\(report.notes)")
            #expect(report.notes.contains { $0.contains("frames sent seen") }, "the output's loop: \(report.notes)")
            var refused = settings
            (refused.source, refused.tee, refused.width, refused.height, refused.verifyEvery) = (
                "vivid-000-vid-cap", "vivid-002-vid-out", 640, 480, 0
            )
            refused.buffers = 4
            let error = expectError(PipelineError.self) { _ = try Pipeline(refused, kernel: kernel).run() }
            #expect(
                error?.problem.contains("the tee's output cannot take capture buffer 0") == true,
                "\(String(describing: error))")
        }
    }

    /// A tee with 4 buffers leaves the output one (the display may hold two, the capture
    /// keeps two to fill), and vivid's output starts only with two queued: nothing moves, and
    /// the stall says who waits on whom.
    static func teeTooShortOfBuffersSaysWhyItStalled(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            var settings = PipelineConfiguration(
                source: "vivid-002-vid-cap", sink: "vkms", strategy: .export, width: 640, height: 480, frames: 12,
                framesPerSecond: 30, buffers: 4, verifyEvery: 0)
            settings.tee = "vivid-000-vid-out"
            let error = expectError(PipelineError.self) { _ = try Pipeline(settings, kernel: kernel).run() }
            let problem = error?.problem ?? ""
            #expect(problem.hasPrefix("stalled: no frame moved on"), "\(problem)")
            #expect(problem.contains("none was given back since STREAMON"), "\(problem)")
            #expect(problem.contains("could not take more"), "\(problem)")
        }
    }
}
