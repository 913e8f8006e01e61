import DmaBufKernel

/// `dmabuf-probe --advise`: which allocator every listed device accepts for one format and size,
/// each candidate tried with each device, and the one to use.
public struct AllocatorAdvice: Codable, Sendable, Equatable {
    public var devices: [String]
    public var format: String
    public var width: Int
    public var height: Int
    public var count: Int
    /// Bytes of one buffer: the most any listed device needs for the format and size.
    public var bytes: Int
    public var candidates: [Candidate]
    /// The allocator to use (a candidate's `name`); nil when no candidate suits every device.
    public var choice: String?
    /// Why, in words.
    public var reason: String
    /// CMA figures when a CMA heap is a candidate: `CmaTotal`, `CmaFree` (kB) and how many
    /// buffers of `bytes` fit now.
    public var cma: [String: Int]?
    public var exitCode: Int32

    public struct Candidate: Codable, Sendable, Equatable {
        /// `system-heap`, `reserved-heap`, `udmabuf`, `expbuf:NODE`, `dumb:DRIVER`.
        public var name: String
        /// `scattered`, `contiguous` or `device` (a listed device's own buffers).
        public var memory: String
        public var results: [Result]
        public var acceptedByAll: Bool

        init(name: String, memory: String, results: [Result]) {
            (self.name, self.memory, self.results) = (name, memory, results)
            acceptedByAll = results.allSatisfy { $0.status == .ok }
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var device: String
        public var status: ProbeStatus
        /// What was tried, or why it was refused (with a requirement where one was found).
        public var detail: String
        public var requirement: String?
    }

    /// The formats the advisor can ask of both V4L2 and DRM devices.
    public static let formats: [String: (v4l2: V4L2PixelFormat, drm: DRMFormat, bytesPerPixel: Int)] = [
        "XR24": (.xbgr32, .xrgb8888, 4),
        "RG16": (.rgb565, .rgb565, 2),
        "YUYV": (.yuyv, DRMFormat(rawValue: V4L2PixelFormat.yuyv.rawValue), 2),
    ]

    public var text: String {
        var lines = [
            "allocator advice for \(devices.joined(separator: ", ")): \(count) buffers of \(width)x\(height) \(format), \(bytes) bytes each"
        ]
        for candidate in candidates {
            lines.append(
                "  \(candidate.name) (\(candidate.memory)): \(candidate.acceptedByAll ? "accepted by every device" : "not by every device")"
            )
            for result in candidate.results {
                lines.append(
                    "    \(result.device): \(result.status == .ok ? "ok" : result.status.rawValue): \(result.detail)")
            }
        }
        if let cma {
            lines.append(
                "  CMA: \(cma["free_kB"] ?? 0) of \(cma["total_kB"] ?? 0) kB free, \(cma["fits"] ?? 0) such buffers fit now"
            )
        }
        lines.append("")
        lines.append(choice.map { "Use: \($0). \(reason)" } ?? "No allocator suits every device: \(reason)")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Probe {
    /// One listed device, ready to be asked: its name, the bytes it needs, and how it imports.
    private struct AdviceImporter {
        let name: String
        let bytes: Int?
        /// Why the device cannot take the format and size at all (then nothing is tried).
        let refusal: String?
        let use: (borrowing DmaBuf) throws -> Void
        let export: ((Int) throws -> DmaBuf?)?
        let exporterName: String
        /// What an accepted try did, in words.
        var tried = "QBUF accepted"
    }

    /// Tries every allocator (each heap but protected ones, udmabuf, each listed device's own
    /// buffers) with every device for `count` buffers of `width`x`height` `format`, and picks:
    /// scattered memory when every device takes it (CMA is scarce and migrates pages to make
    /// room), else a CMA heap (with its room for `count`), else a device's own buffers.
    public func advise(
        _ devices: [ProbeDevice], format: String, width: Int, height: Int, count: Int
    ) -> AllocatorAdvice {
        let codes = AllocatorAdvice.formats[format]!
        let importers = devices.map { adviceImporter($0, codes, width: width, height: height) }
        let page = kernel.pageSize
        let needed = importers.compactMap(\.bytes).max() ?? width * height * codes.bytesPerPixel
        let bytes = (needed + page - 1) / page * page

        var sources: [(name: String, memory: String, make: (Int) throws -> DmaBuf?)] = []
        for heap in (try? DmaHeap.names(kernel: kernel)) ?? [] {
            let kind = HeapKind(heapName: heap)
            guard kind != .protected else { continue }
            sources.append(
                (
                    "\(heap)-heap", kind == .cma ? "contiguous" : kind == .system ? "scattered" : kind.rawValue,
                    { size in
                        try DmaHeap(heap, kernel: kernel).allocate(length: size, name: Self.debugName)
                    }
                ))
        }
        if (try? UdmabufDevice(kernel: kernel)) != nil {
            sources.append(
                (
                    "udmabuf", "scattered",
                    { size in
                        try UdmabufDevice(kernel: kernel).create(
                            from: try Memfd(kernel: kernel, name: Self.debugName, length: size))
                    }
                ))
        }
        for importer in importers {
            if let export = importer.export { sources.append((importer.exporterName, "device", export)) }
        }

        var candidates: [AllocatorAdvice.Candidate] = []
        for source in sources {
            var results: [AllocatorAdvice.Result] = []
            for importer in importers {
                if let refusal = importer.refusal {
                    results.append(
                        .init(device: importer.name, status: .failed, detail: refusal, requirement: "format/size"))
                    continue
                }
                if source.name == importer.exporterName {
                    results.append(.init(device: importer.name, status: .ok, detail: "its own buffers"))
                    continue
                }
                do {
                    guard let buffer = try source.make(bytes) else {
                        results.append(
                            .init(
                                device: importer.name, status: .skipped,
                                detail: "the exporter's buffers are smaller than \(bytes) bytes"))
                        continue
                    }
                    let used = Result { try importer.use(buffer) }
                    try? buffer.close()
                    try used.get()
                    results.append(.init(device: importer.name, status: .ok, detail: importer.tried))
                } catch {
                    var result = AllocatorAdvice.Result(
                        device: importer.name, status: .failed, detail: Self.briefly(error))
                    if let found = findRequirement(
                        importer: "advise \(importer.name) \(format) \(width)x\(height)", size: bytes,
                        refusedExporter: source.name, use: importer.use)
                    {
                        (result.status, result.requirement) = (.unsupported, found.kind.rawValue)
                        result.detail += ": \(found)"
                    }
                    results.append(result)
                }
            }
            candidates.append(.init(name: source.name, memory: source.memory, results: results))
        }

        var advice = AllocatorAdvice(
            devices: importers.map(\.name), format: format, width: width, height: height, count: count, bytes: bytes,
            candidates: candidates, choice: nil, reason: "", cma: nil, exitCode: ExitStatus.ok)
        let cma = cmaFigures()
        if let cma, candidates.contains(where: { $0.memory == "contiguous" }) {
            advice.cma = ["total_kB": cma.total >> 10, "free_kB": cma.free >> 10, "fits": cma.free / bytes]
        }
        let accepted = candidates.filter(\.acceptedByAll)
        let needsContiguous = candidates.flatMap(\.results).filter {
            $0.requirement == ImporterRequirement.Kind.contiguousMemory.rawValue
        }
        .map(\.device)
        if let scattered = accepted.first(where: { $0.memory == "scattered" }) {
            advice.choice = scattered.name
            advice.reason =
                "Every device takes scattered memory: no CMA needed (CMA is scarce, and the kernel migrates pages to make room in it)."
        } else if let contiguous = accepted.first(where: { $0.memory == "contiguous" }) {
            advice.choice = contiguous.name
            let who = Set(needsContiguous).sorted().joined(separator: ", ")
            advice.reason = "\(who.isEmpty ? "A device" : who) needs contiguous memory, which this CMA heap gives"
            if let cma {
                let fits = cma.free / bytes
                advice.reason +=
                    fits >= count
                    ? "; CMA has room for \(fits) such buffers now, \(count) asked."
                    : "; but CMA has room for only \(fits) such buffers now, \(count) asked (cma= on the kernel command line sets its size)."
            } else {
                advice.reason += "."
            }
        } else if let own = accepted.first(where: { $0.memory == "device" }) {
            advice.choice = own.name
            advice.reason =
                "Only a device's own buffers are accepted by every device: export them (EXPBUF or PRIME) and import them in the others."
        } else {
            advice.reason = "every candidate is refused by at least one device (see above)."
            advice.exitCode = ExitStatus.failed
        }
        return advice
    }

    private func adviceImporter(
        _ device: ProbeDevice, _ codes: (v4l2: V4L2PixelFormat, drm: DRMFormat, bytesPerPixel: Int), width: Int,
        height: Int
    ) -> AdviceImporter {
        switch device {
        case .v4l2(let path, let name):
            do {
                guard let (type, got) = try setFormat(path, codes.v4l2, width: width, height: height) else {
                    return AdviceImporter(
                        name: name, bytes: nil, refusal: "not a capture, output or mem2mem node", use: { _ in },
                        export: nil, exporterName: "expbuf:\(name)")
                }
                guard got.pixelFormat == codes.v4l2, got.width == UInt32(width), got.height == UInt32(height),
                    got.planes.count == 1
                else {
                    return AdviceImporter(
                        name: name, bytes: nil,
                        refusal:
                            "S_FMT gave \(got.width)x\(got.height) \(got.pixelFormat) (\(got.planes.count) planes): the node does not take \(width)x\(height) \(codes.v4l2) in one plane",
                        use: { _ in }, export: nil, exporterName: "expbuf:\(name)")
                }
                let size = Int(got.planes[0].sizeImage)
                return AdviceImporter(
                    name: name, bytes: size, refusal: nil,
                    use: { buffer in
                        // The format stays as S_FMT left it: vivid keeps it per instance.
                        let node = try V4L2Device(path: path, kernel: kernel)
                        let queued = Result { try queueOnce(node, type: type, dmaBufs: [buffer.fd], sizes: [size]) }
                        try node.close()
                        try queued.get()
                    },
                    export: { _ in
                        let node = try V4L2Device(path: path, kernel: kernel)
                        let queue = try V4L2Queue(device: node, type: type, memory: .mmap, count: 1)
                        let exported = try queue.export(BufferIndex(rawValue: 0))
                        try queue.release()
                        try node.close()
                        return exported
                    }, exporterName: "expbuf:\(name)")
            } catch {
                return AdviceImporter(
                    name: name, bytes: nil, refusal: "\(error)", use: { _ in }, export: nil,
                    exporterName: "expbuf:\(name)")
            }
        case .drm(let path, let driver):
            let pitch = width * codes.bytesPerPixel
            let scanout = codes.drm == .xrgb8888 && (try? displayMode(path, size: (width, height))) != nil
            return AdviceImporter(
                name: driver, bytes: pitch * height, refusal: nil,
                use: { buffer in
                    let device = try DRMDevice(path: path, kernel: kernel)
                    if scanout {
                        try expectScanout(of: buffer, try DisplayPipe(device: device, size: (width, height)), device)
                    } else {
                        let gem = try device.importBuffer(buffer)
                        let framebuffer = try device.addFramebuffer(
                            DRMFramebufferRequest(
                                width: UInt32(width), height: UInt32(height), format: codes.drm, handles: [gem.handle],
                                pitches: [UInt32(pitch)]))
                        try framebuffer.remove()
                        try gem.close()
                    }
                    try device.close()
                },
                export: { _ in
                    let device = try DRMDevice(path: path, kernel: kernel)
                    let gem = try device.createDumbBuffer(
                        width: width, height: height, bitsPerPixel: codes.bytesPerPixel * 8)
                    let exported = try device.export(gem)
                    try gem.close()
                    try device.close()
                    return exported
                }, exporterName: "dumb:\(driver)",
                tried: scanout
                    ? "imported and scanned out at \(width)x\(height); the writeback matched"
                    : "imported, AddFB2 accepted (no \(width)x\(height) XR24 mode to scan it out)")
        }
    }

    /// S_FMT on the node's streaming queue; nil for a node that streams nothing.
    private func setFormat(
        _ path: String, _ format: V4L2PixelFormat, width: Int, height: Int
    ) throws -> (V4L2BufferType, V4L2Format)? {
        let node = try V4L2Device(path: path, kernel: kernel)
        let type = node.capability.streamingType
        let got = Result {
            try type.map { type in
                try node.setFormat(
                    V4L2Format(type: type, width: UInt32(width), height: UInt32(height), pixelFormat: format))
            }
        }
        try node.close()
        guard let type, let format = try got.get() else { return nil }
        return (type, format)
    }

}
