import CBenchReference
import DmaBufKit
import Logging

/// The ioctl loops, each run by the C reference and by DmaBufKit's typed API on the same
/// descriptors. On the simulated kernel only the Swift side runs (there is no C to compare):
/// what is left is the cost of the typed layers over the model.
public struct LoopBenchmarks {
    public struct Settings: Sendable {
        /// Runs per loop and side; each run gives one Swift/C ratio.
        public var runs = 7
        /// Multiplies every loop's rounds (e.g. 0.1 for a quick look).
        public var roundsScale = 1.0
        public var heap = "system"
        /// (bytes, rounds) per heap size.
        public var heapSizes = [(4 << 10, 5000), (1 << 20, 5000), (8 << 20, 200), (32 << 20, 50)]
        public var udmabufSizes = [(1 << 20, 2000), (8 << 20, 300), (32 << 20, 100)]
        public var syncRounds = 20000
        public var syncBufferBytes = 1 << 20
        /// A vivid capture node, at its smallest webcam size and fastest rate (the device paces
        /// round trips; thread CPU time leaves the waiting out).
        public var videoNode = "vivid-000-vid-cap"
        public var videoSize: (width: UInt32, height: UInt32) = (320, 180)
        public var videoFramesPerSecond: UInt32 = 60
        public var videoRounds = 120
        /// A paced loop's noise is per frame, not per CPU second: at 18 frames a run the gate's
        /// medians spread 0.68–2.22 between runs, so `roundsScale` takes it no lower than this.
        public var videoMinimumRounds = 120
        public var display = "vkms"
        public var primeRounds = 2000
        /// Only the loops whose name contains one of these (all when empty).
        public var only: [String] = []
        /// Also time each loop through the lower layers only (shim, LinuxKernel, any Kernel).
        public var layers = true
        /// For testing the regression gate: the Swift side burns this much more CPU than its
        /// loop took (50 makes every Swift/C ratio 1.5 times what it was).
        public var injectedSlowdownPercent = 0.0
        public init() {}
    }

    public let kernel: any Kernel
    public let settings: Settings
    /// Asked between runs: a signal number ends the benchmark there; the loops not finished
    /// are listed as skipped, interrupted.
    public var stopRequest: () -> Int32? = { nil }
    /// The loops, by the names `--only` matches.
    public static let loopNames = [
        "heap alloc+close", "udmabuf create+close", "DMA_BUF_IOCTL_SYNC pair", "V4L2 DQBUF+QBUF", "PRIME import+close",
    ]
    /// The clock every run is timed by; its step sets how long a run must be.
    public let clock: ClockCheck
    let logger: Logger
    /// The C reference runs only against the real kernel.
    var withReference: Bool { kernel is LinuxKernel }

    public init(kernel: any Kernel, settings: Settings = Settings(), clock: ClockCheck = .measure(), logger: Logger) {
        (self.kernel, self.settings, self.clock, self.logger) = (kernel, settings, clock, logger)
    }

    /// Every loop whose device exists; those whose device does not are listed with the reason.
    /// Throws `BenchmarkError` when the clock cannot time them (checked first) or a run's
    /// reading is not one the clock can have measured.
    public func run() throws -> (measurements: [LoopMeasurement], skipped: [String]) {
        if let problem = clock.problem { throw BenchmarkError("no loop measured: \(problem)") }
        var measurements: [LoopMeasurement] = []
        var skipped: [String] = []
        let groups: [() throws -> [LoopMeasurement]] = [heapLoops, udmabufLoops, syncLoop, videoLoop, primeLoop]
        for (name, group) in zip(Self.loopNames, groups)
        where settings.only.isEmpty || settings.only.contains(where: { name.lowercased().contains($0.lowercased()) }) {
            if let signal = stopRequest() {
                skipped.append("\(name): not measured: interrupted by \(StopSignals.name(signal))")
                continue
            }
            do { measurements += try group() } catch let error as KernelError
                where error.errno == .ENOENT && error.operation == "open"
            {
                skipped.append("\(name): \(error)")
                logger.info("skipping \(name): \(error)")
            } catch let interruption as BenchmarkInterrupted {
                skipped.append("\(name): not finished: interrupted by \(StopSignals.name(interruption.signal))")
            }
        }
        return (measurements, skipped)
    }

    func rounds(_ count: Int) -> Int { max(1, Int((Double(count) * settings.roundsScale).rounded())) }

    /// Warms both sides up, times three short passes of each to size the runs so that each takes at
    /// least the clock's minimum at the fastest pace seen (a pass the host preempted reads
    /// long), then alternates which goes first, run by run; every run's reading is checked.
    func compare(
        _ loop: String, _ parameter: String, bytes: Int? = nil, rounds count: Int, minimumRounds: Int = 1,
        c: (Int) throws -> Int64, swift measuredSwift: (Int) throws -> Int64, layers allLayers: [LoopLayer] = []
    ) throws -> LoopMeasurement {
        let layers = settings.layers ? allLayers : []
        let slowdown = settings.injectedSlowdownPercent / 100
        func swift(_ rounds: Int) throws -> Int64 {
            let cpu = try measuredSwift(rounds)
            return slowdown > 0 ? cpu + burn(Int64(Double(cpu) * slowdown)) : cpu
        }
        let asked = max(minimumRounds, rounds(count))
        let warmUp = max(1, asked / 10)
        if withReference { _ = try c(warmUp) }
        _ = try swift(warmUp)
        for layer in layers { _ = try layer.body(warmUp) }
        // Per round, once warm (a first import or a first touch of the pages costs far more).
        var cheaper = Int64.max
        for _ in 0..<3 {
            cheaper = min(cheaper, try swift(warmUp) / Int64(warmUp))
            if withReference { cheaper = min(cheaper, try c(warmUp) / Int64(warmUp)) }
        }
        cheaper = max(1, cheaper)
        let rounds = max(asked, Int((clock.minimumRunNanoseconds + cheaper - 1) / cheaper))
        func checked(_ side: String, _ run: Int, _ body: (Int) throws -> Int64) throws -> Int64 {
            let started = monotonicNanoseconds()
            let cpu = try body(rounds)
            if let rejection = clock.rejection(cpu: cpu, wall: monotonicNanoseconds() - started) {
                throw BenchmarkError(
                    "\(loop) \(parameter): \(side) run \(run + 1) of \(rounds) rounds \(rejection): the clock did not advance sensibly, so no ratio is given"
                )
            }
            return cpu
        }
        var cTimes: [Int64] = [], swiftTimes: [Int64] = []
        var layerTimes = layers.map { (name: $0.name, times: [Int64]()) }
        for run in 0..<settings.runs {
            if let signal = stopRequest() { throw BenchmarkInterrupted(signal: signal) }
            if withReference && run % 2 == 0 { cTimes.append(try checked("the C reference's", run, c)) }
            swiftTimes.append(try checked("the Swift side's", run, swift))
            for (index, layer) in layers.enumerated() {
                layerTimes[index].times.append(try checked("the \(layer.name) layer's", run, layer.body))
            }
            if withReference && run % 2 == 1 { cTimes.append(try checked("the C reference's", run, c)) }
        }
        let measurement = LoopMeasurement(
            loop: loop, parameter: parameter, bytes: bytes, rounds: rounds, c: cTimes, swift: swiftTimes,
            layers: layerTimes)
        logger.info(
            "\(loop) \(parameter): Swift/C \(measurement.ratio.map { String(format: "%.3f", $0.median) } ?? "-")")
        return measurement
    }

    func heapLoops() throws -> [LoopMeasurement] {
        let heap = try DmaHeap(settings.heap, kernel: kernel)
        let (fd, path) = (heap.descriptor.fd.rawValue, heap.descriptor.path)
        var results: [LoopMeasurement] = []
        for (bytes, count) in settings.heapSizes {
            results.append(
                try compare(
                    "heap alloc+close", "\(settings.heap) \(sizeText(bytes))", bytes: bytes, rounds: count,
                    c: { rounds in
                        try reference("DMA_HEAP_IOCTL_ALLOC", path) {
                            cbench_heap_alloc_close(fd, UInt64(bytes), Int32(rounds), $0)
                        }
                    },
                    swift: { rounds in try timed { for _ in 0..<rounds { try heap.allocate(length: bytes).close() } } },
                    layers: heapLayers(heap: heap.descriptor.fd, bytes: bytes)))
        }
        try heap.close()
        return results
    }

    func udmabufLoops() throws -> [LoopMeasurement] {
        let device = try UdmabufDevice(kernel: kernel)
        let memfd = try Memfd(kernel: kernel, name: "dmabuf-bench", length: settings.udmabufSizes.map(\.0).max() ?? 0)
        let (fd, memfdNumber, path) = (device.descriptor.fd.rawValue, memfd.fd.rawValue, device.descriptor.path)
        var results: [LoopMeasurement] = []
        for (bytes, count) in settings.udmabufSizes {
            results.append(
                try compare(
                    "udmabuf create+close", sizeText(bytes), bytes: bytes, rounds: count,
                    c: { rounds in
                        try reference("UDMABUF_CREATE", path) {
                            cbench_udmabuf_create_close(fd, memfdNumber, UInt64(bytes), Int32(rounds), $0)
                        }
                    },
                    swift: { rounds in
                        try timed { for _ in 0..<rounds { try device.create(from: memfd, size: bytes).close() } }
                    }, layers: udmabufLayers(device: device.descriptor.fd, memfd: memfd.fd, bytes: bytes)))
        }
        try memfd.close()
        try device.close()
        return results
    }

    func syncLoop() throws -> [LoopMeasurement] {
        let heap = try DmaHeap(settings.heap, kernel: kernel)
        let buffer = try heap.allocate(length: settings.syncBufferBytes)
        let (fd, path) = (buffer.fd.rawValue, buffer.descriptor.path)
        let result = try compare(
            "DMA_BUF_IOCTL_SYNC pair", "\(settings.heap) heap \(sizeText(settings.syncBufferBytes)), mapped",
            bytes: nil, rounds: settings.syncRounds,
            c: { rounds in try reference("DMA_BUF_IOCTL_SYNC", path) { cbench_sync_pairs(fd, Int32(rounds), $0) } },
            swift: { rounds in
                try buffer.withMapping { mapping in
                    try timed { for _ in 0..<rounds { try mapping.readWrite { _ in } } }
                }
            }, layers: syncLayers(buffer: buffer.fd))
        try buffer.close()
        try heap.close()
        return [result]
    }

    func videoLoop() throws -> [LoopMeasurement] {
        let camera = try V4L2Device(name: settings.videoNode, kernel: kernel)
        let type = camera.capability.streamingType ?? .videoCapture
        var format = try camera.format(type)
        (format.pixelFormat, format.width, format.height) = (
            V4L2PixelFormat.yuyv, settings.videoSize.width, settings.videoSize.height
        )
        format = try camera.setFormat(format)
        let interval = try camera.setFrameInterval(type, V4L2Fraction(1, settings.videoFramesPerSecond))
        var queue = try V4L2Queue(device: camera, type: type, memory: .mmap, count: 4)
        for index in queue.indices { try queue.enqueue(index) }
        try queue.start()
        let (fd, planes, path) = (camera.fd.rawValue, UInt32(queue.planeCount), camera.path)
        let result = try compare(
            "V4L2 DQBUF+QBUF",
            "\(settings.videoNode) \(format.width)x\(format.height) at \(String(format: "%.0f", interval.framesPerSecond)) fps, poll-driven",
            rounds: settings.videoRounds, minimumRounds: settings.videoMinimumRounds,
            c: { rounds in
                try reference("VIDIOC_DQBUF", path) {
                    cbench_v4l2_round_trips(fd, type.rawValue, type.isMultiplanar ? 1 : 0, planes, Int32(rounds), $0)
                }
            },
            swift: { rounds in
                try timed { () throws(KernelError) in
                    for _ in 0..<rounds {
                        guard let buffer = try queue.dequeue(waiting: .seconds(5)) else {
                            throw KernelError("VIDIOC_DQBUF", .ETIMEDOUT, path: path, reason: "no frame within 5 s")
                        }
                        try queue.enqueue(BufferIndex(rawValue: buffer.index))
                    }
                }
            }, layers: videoLayers(video: queue.fd, type: type, planes: queue.planeCount, path: path))
        try queue.release()
        try camera.close()
        return [result]
    }

    func primeLoop() throws -> [LoopMeasurement] {
        let display = try DRMDevice(driver: settings.display, kernel: kernel)
        let heap = try DmaHeap(settings.heap, kernel: kernel)
        let buffer = try heap.allocate(length: settings.syncBufferBytes)
        let (fd, dmaBuf, path) = (display.fd.rawValue, buffer.fd.rawValue, display.path)
        let result = try compare(
            "PRIME import+close", "\(settings.display), \(settings.heap) heap \(sizeText(settings.syncBufferBytes))",
            rounds: settings.primeRounds,
            c: { rounds in
                try reference("DRM_IOCTL_PRIME_FD_TO_HANDLE", path) {
                    cbench_prime_import_close(fd, dmaBuf, Int32(rounds), $0)
                }
            },
            swift: { rounds in try timed { for _ in 0..<rounds { try display.importBuffer(buffer).close() } } },
            layers: primeLayers(display: display.fd, dmaBuf: buffer.fd))
        try buffer.close()
        try heap.close()
        try display.close()
        return [result]
    }
}

/// Spins until the thread has used `nanoseconds` more CPU; the CPU it used.
func burn(_ nanoseconds: Int64) -> Int64 {
    let start = threadCPUNanoseconds()
    while threadCPUNanoseconds() - start < nanoseconds {}
    return threadCPUNanoseconds() - start
}

/// Runs one C reference loop: its thread CPU time, or its errno as a `KernelError`.
func reference(
    _ operation: String, _ path: String, _ body: (UnsafeMutablePointer<Int64>) -> Int32
) throws(KernelError) -> Int64 {
    var nanoseconds: Int64 = 0
    let result = body(&nanoseconds)
    if result < 0 {
        throw KernelError(operation, Errno(rawValue: -result), path: path, reason: "in the C reference loop")
    }
    return nanoseconds
}

func sizeText(_ bytes: Int) -> String {
    bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
}

/// A stop asked for in the middle of a loop: its runs so far are dropped (a ratio needs them all).
struct BenchmarkInterrupted: Error {
    let signal: Int32
}
