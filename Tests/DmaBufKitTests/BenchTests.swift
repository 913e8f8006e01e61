import DmaBufKit
import DmaBufSimulation
import Logging
import Testing

@testable import DmaBufBench

/// The benchmark loops on both kernels: every loop runs (on the real one against the C
/// reference too), each round does what it says, and nothing is left behind.
enum BenchCases {
    static func loopsRunAndLeakNothing(_ kernel: any Kernel) throws {
        var settings = LoopBenchmarks.Settings()
        (settings.runs, settings.roundsScale) = (2, 0.002)
        try expectNoLeaks(kernel) {
            let benchmarks = LoopBenchmarks(kernel: kernel, settings: settings, logger: Logger(label: "test"))
            // The clock ticks finely enough to time a run (in the VM: the guest boots with tsc=reliable).
            #expect(benchmarks.clock.problem == nil, "\(benchmarks.clock.summary)")
            let (measurements, skipped) = try benchmarks.run()
            #expect(skipped.isEmpty, "\(skipped)")
            #expect(
                measurements.map(\.loop) == [
                    "heap alloc+close", "heap alloc+close", "heap alloc+close", "heap alloc+close",
                    "udmabuf create+close", "udmabuf create+close", "udmabuf create+close",
                    "DMA_BUF_IOCTL_SYNC pair", "V4L2 DQBUF+QBUF", "PRIME import+close",
                ])
            for measurement in measurements {
                #expect(measurement.runs == 2 && measurement.rounds >= 1)
                // Every run was sized to the clock's minimum, whatever --rounds-scale asked.
                let minimum = Double(benchmarks.clock.minimumRunNanoseconds) / 10
                #expect(
                    measurement.swiftNanosecondsPerRound.minimum * Double(measurement.rounds) >= minimum,
                    "\(measurement.loop)")
                #expect(
                    (measurement.cNanosecondsPerRound?.minimum ?? minimum) * Double(measurement.rounds) >= minimum,
                    "\(measurement.loop)")
                // The C reference runs only against the real kernel, and then gives every loop a ratio.
                #expect((measurement.ratio != nil) == (kernel is LinuxKernel), "\(measurement.loop)")
                #expect((measurement.swiftMicrosecondsPerMiB != nil) == ((measurement.bytes ?? 0) >= 1 << 20))
            }
        }
    }
}

@Suite("Benchmarks on the simulated kernel")
struct SimulatedBenchTests {
    @Test func loops() throws { try BenchCases.loopsRunAndLeakNothing(SimulatedKernel()) }

    /// A loop whose device is absent is listed with the reason, not measured and not fatal.
    @Test func missingDevicesAreListed() throws {
        var configuration = SimulatedKernel.Configuration()
        configuration.heaps = []
        var settings = LoopBenchmarks.Settings()
        (settings.runs, settings.roundsScale) = (1, 0.002)
        let (measurements, skipped) = try LoopBenchmarks(
            kernel: SimulatedKernel(configuration), settings: settings, logger: Logger(label: "test")
        ).run()
        #expect(
            skipped.count == 3 && skipped.allSatisfy { $0.contains("ENOENT") && $0.contains("/dev/dma_heap/system") },
            "\(skipped)")
        #expect(Set(measurements.map(\.loop)) == ["udmabuf create+close", "V4L2 DQBUF+QBUF"])
    }

    /// A clock that stalls, lags or jumps is refused before anything is measured, and a run
    /// whose reading that clock cannot have made is refused after; a sound one passes both.
    @Test func unsoundClocksAreRefused() throws {
        let wall = [Int64](repeating: 200_000, count: 10)
        let sound = ClockCheck(step: 40, busyMicroseconds: 200, wall: wall, cpu: [Int64](repeating: 199_000, count: 10))
        #expect(sound.problem == nil && sound.minimumRunNanoseconds == 1_000_000, "\(sound.summary)")
        let stalling = ClockCheck(
            step: 40, busyMicroseconds: 200, wall: wall, cpu: [0] + [Int64](repeating: 199_000, count: 9))
        #expect(stalling.problem?.contains("read 0 for 1 of 10") == true)
        #expect(
            ClockCheck(step: 40, busyMicroseconds: 200, wall: wall, cpu: [Int64](repeating: 60_000, count: 10)).problem?
                .contains("lags") == true)
        #expect(
            ClockCheck(
                step: 40, busyMicroseconds: 200, wall: wall, cpu: [4_000_000] + [Int64](repeating: 199_000, count: 9)
            ).problem?.contains("jumps") == true)
        #expect(
            ClockCheck(step: 0, busyMicroseconds: 200, wall: wall, cpu: wall).problem?.contains("never moved") == true)
        #expect(
            ClockCheck(step: 4_000_000, busyMicroseconds: 200, wall: wall, cpu: wall).minimumRunNanoseconds
                == 400_000_000)

        #expect(sound.rejection(cpu: 1_100_000, wall: 1_200_000) == nil)
        #expect(sound.rejection(cpu: 0, wall: 1_200_000) != nil)
        #expect(sound.rejection(cpu: 50_000, wall: 1_200_000) != nil)
        #expect(sound.rejection(cpu: 5_000_000, wall: 1_200_000) != nil)
        let refused = #expect(throws: BenchmarkError.self) {
            _ = try LoopBenchmarks(kernel: SimulatedKernel(), clock: stalling, logger: Logger(label: "test")).run()
        }
        #expect(refused?.description.contains("no loop measured") == true)
    }

    /// The targets are judged from the medians, and a miss says by how much.
    @Test func targetsSayByHowMuch() throws {
        let within = LoopMeasurement(
            loop: "a", parameter: "x", bytes: nil, rounds: 10, c: [1000, 1000, 1000], swift: [1010, 1200, 1040])
        let over = LoopMeasurement(
            loop: "b", parameter: "y", bytes: 1 << 21, rounds: 10, c: [1000, 1000, 1000], swift: [1100, 1080, 1300])
        #expect(within.ratio?.median == 1.04 && over.ratio?.median == 1.1)
        #expect(over.cMicrosecondsPerMiB == 0.05 && over.swiftMicrosecondsPerMiB == 0.055)
        let targets = BenchReport.judge(loops: [within, over], pipelines: [])
        #expect(targets.count == 1 && targets[0].met == false)
        #expect(targets[0].detail == "missed: b y 1.100 (+10.0%)")
        #expect(BenchReport.judge(loops: [within], pipelines: [])[0].met)

        let pipelines = [
            cost(.export, 640, 1.0), cost(.export, 1920, 1.3), cost(.copy, 1920, 20), cost(.gstreamer, 640, 2),
            cost(.gstreamer, 1920, 1.2), cost(.export, 640, 5.0, buffers: 16), cost(.floor, 640, 0.7),
            cost(.floor, 1920, 1.2),
        ]
        let verdicts = Dictionary(
            uniqueKeysWithValues: BenchReport.judge(loops: [], pipelines: pipelines).map { ($0.goal, $0.met) })
        #expect(
            verdicts == [
                "export: CPU per frame at 1920x1080 within 1.2× of 640x480": false,
                "export: CPU per frame at 1920x1080 at most 0.5× the copy path's": true,
                "export: CPU per frame ≤ GStreamer's at width 640": true,
                "export: CPU per frame ≤ GStreamer's at width 1920": false,
                "export: CPU per frame ≤ 1.3× the C floor's at width 640": false,
                "export: CPU per frame ≤ 1.3× the C floor's at width 1920": true,
            ])
    }

    func cost(
        _ contender: PipelineCost.Contender, _ width: Int, _ milliseconds: Double, buffers: Int = 4, streams: Int = 1
    )
        -> PipelineCost.Measurement
    {
        let spread = Spread(minimum: milliseconds, median: milliseconds, maximum: milliseconds)
        return PipelineCost.Measurement(
            contender: contender, title: contender.title, width: width, height: width * 9 / 16, buffers: buffers,
            streams: streams, framesPerSecond: 5, settleSeconds: 5, windowSeconds: 8, command: "",
            cpuMillisecondsPerFrame: spread,
            userMillisecondsPerFrame: nil, totalCPUSeconds: spread, framesCopied: nil, mostDrops: 0)
    }

    /// The slope of export's cost over the buffers in flight, by least squares over the medians.
    @Test func bufferScalingHasASlope() throws {
        let report = BenchReport(
            kernel: SimulatedKernel(), clock: .measure(), loops: [], skipped: [],
            pipelines: [
                cost(.export, 640, 1.0, buffers: 2), cost(.export, 640, 1.2, buffers: 4),
                cost(.export, 640, 1.6, buffers: 8), cost(.export, 640, 2.4, buffers: 16),
                cost(.export, 1920, 9.0),
            ])
        let slope = try #require(report.bufferSlope)
        #expect(slope.size == "640x360" && slope.counts == "2, 4, 8, 16 buffers")
        #expect(abs(slope.millisecondsPerBuffer - 0.1) < 1e-9)
        #expect(report.text.contains("100.0 µs of CPU per frame more for each buffer"))
        #expect(
            BenchReport(
                kernel: SimulatedKernel(), clock: .measure(), loops: [], skipped: [],
                pipelines: [
                    cost(.export, 640, 1.0)
                ]
            ).bufferSlope == nil)
    }

    /// The slope over concurrent streams, and each streams row named by its count.
    @Test func streamScalingHasASlope() throws {
        let report = BenchReport(
            kernel: SimulatedKernel(), clock: .measure(), loops: [], skipped: [],
            pipelines: [
                cost(.export, 640, 1.0), cost(.streams, 640, 2.0, streams: 1), cost(.streams, 640, 2.5, streams: 2),
                cost(.streams, 640, 3.5, streams: 4),
            ])
        let slope = try #require(report.streamSlope)
        #expect(slope.size == "640x360" && slope.counts == "1, 2, 4 streams")
        #expect(abs(slope.millisecondsPerStream - 0.5) < 1e-9)
        #expect(report.text.contains("500.0 µs of CPU per frame more for each stream added"))
        #expect(report.text.contains("concurrent streams (one process each): 4 |"))
        #expect(report.bufferSlope == nil)
        let names = report.testResults.flatMap(\.subtests).map(\.name)
        #expect(names.contains("streams 640x360 4 buffers 2 streams") && names.contains("export 640x360 4 buffers"))
    }

    /// Several children at once: each one's status, output and CPU clock samples its own.
    @Test func childProcessesRunTogether() throws {
        let outcomes = try ChildProcess.runTogether(
            [
                ["sh", "-c", "echo one; exit 3"],
                ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo two"],
            ],
            sampleTimes: [.zero], timeout: .seconds(60))
        #expect(outcomes.map(\.status) == [3, 0])
        #expect(outcomes.map(\.output) == ["one\n", "two\n"])
        #expect(outcomes[1].cpuSeconds > 0)
        #expect(throws: KernelError.self) {
            try ChildProcess.runTogether([["true"], ["/nonexistent/program"]], timeout: .seconds(60))
        }
    }

    /// The gate passes a loop within bound + noise, fails one past it and one it cannot find,
    /// and a doubled Swift side (the slowdown CI injects) fails where the plain run passed.
    @Test func gateFailsPastBoundAndNoise() throws {
        let gate = try BenchGate(
            text: """
                # loop | parameter | bound | noise
                a | x | 1.05 | 0.05
                b | y | 1.00 | 0.02   # comment
                c | z | 1.00 | 0.10
                """, source: "bounds.txt")
        #expect(zip(gate.bounds.map(\.limit), [1.10, 1.02, 1.10]).allSatisfy { abs($0 - $1) < 1e-9 })
        func loop(_ name: String, _ parameter: String, _ swift: [Int64]) -> LoopMeasurement {
            LoopMeasurement(
                loop: name, parameter: parameter, bytes: nil, rounds: 10, c: [1000, 1000, 1000], swift: swift)
        }
        let plain = [loop("a", "x 4 KiB", [1080, 1090, 1100]), loop("b", "y", [1030, 1010, 1000])]
        let verdicts = gate.judge(plain)
        #expect(verdicts.map(\.passed) == [true, true, false])
        #expect(verdicts[2].line.contains("not measured"))
        #expect(verdicts[0].line.hasPrefix("ok   a x: Swift/C 1.090 ≤ 1.100"))
        let slowed = plain.map { loop($0.loop, $0.parameter, [2180, 2180, 2180]) }
        #expect(gate.judge(slowed).map(\.passed) == [false, false, false])
        #expect(gate.judge(slowed)[0].line.hasPrefix("FAIL a x: Swift/C 2.180 > 1.100"))

        for bad in ["a | x | 1.05", "a | x | fast | 0.1", "a | x | 1.0 | -0.1", "# only a comment"] {
            #expect(throws: BenchmarkError.self) { try BenchGate(text: bad, source: "bounds.txt") }
        }
    }
}

extension DeviceTests {
    @Suite(
        "Benchmarks on the real kernel", .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason)
    )
    struct BenchOnDevices {
        @Test func loops() throws { try BenchCases.loopsRunAndLeakNothing(LinuxKernel()) }
    }
}
