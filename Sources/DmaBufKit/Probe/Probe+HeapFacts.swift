import DmaBufKernel

/// What each heap's memory is, tried: its kind (from the name), the CMA area's size and room,
/// and whether its buffers of 4 KiB, 1 MiB and 8 MiB were contiguous for an importer that
/// needs contiguous memory (when this machine has one).
extension Probe {
    static let contiguitySizes = [4096, 1 << 20, 8 << 20]
    /// The buffer size "fits now" counts: 8 MiB, about one 1920x1080 XRGB8888 frame (7.9 MiB).
    static let frameBytes = 8 << 20

    /// `CmaTotal` and `CmaFree` of /proc/meminfo, in bytes; nil where the kernel has no CMA.
    func cmaFigures() -> (total: Int, free: Int)? {
        guard let text = try? kernel.readFile(KernelPaths.memoryInfo) else { return nil }
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            if parts.count >= 2, let kilobytes = Int(parts[1]) { fields[String(parts[0])] = kilobytes << 10 }
        }
        guard let total = fields["CmaTotal"], let free = fields["CmaFree"] else { return nil }
        return (total, free)
    }

    func withAllocatorFacts(
        _ heaps: ProbeReport.Section<ProbeReport.HeapReport>,
        importers v4l2: ProbeReport.Section<ProbeReport.V4L2Report>
    ) -> ProbeReport.Section<ProbeReport.HeapReport> {
        var heaps = heaps
        let cma = cmaFigures()
        let working = heaps.items.filter { $0.status == .ok }.map(\.name)
        // The importer that could try the most sizes (an output node takes smaller frames).
        let contiguity = contiguousImporters(v4l2).compactMap { tryContiguity(of: working, with: $0) }.min {
            func untried(_ found: (importer: String, answers: [String: [Int: String]])) -> Int {
                found.answers.values.flatMap(\.values).filter { $0.hasPrefix("not tried") }.count
            }
            return untried($0) < untried($1)
        }
        for index in heaps.items.indices {
            let name = heaps.items[index].name
            let kind = HeapKind(heapName: name)
            var facts: [String: String] = ["kind": kind.rawValue]
            if kind == .cma, let cma {
                facts["cma_total_kB"] = "\(cma.total >> 10)"
                facts["cma_free_kB"] = "\(cma.free >> 10)"
                facts["fits_now_8MiB"] = "\(cma.free / Self.frameBytes)"
            }
            if let contiguity {
                facts["contiguity_tried_with"] = contiguity.importer
                for (size, answer) in contiguity.answers[name] ?? [:] {
                    facts["contiguous_\(Self.sizeLabel(size))"] = answer
                }
            } else {
                facts["contiguity_tried_with"] = "none: no importer here needs contiguous memory"
            }
            heaps.items[index].facts = facts
        }
        return heaps
    }

    static func sizeLabel(_ bytes: Int) -> String { bytes >= 1 << 20 ? "\(bytes >> 20)MiB" : "\(bytes >> 10)KiB" }

    /// Single-plane V4L2 nodes the probe found to need contiguous memory.
    private func contiguousImporters(
        _ v4l2: ProbeReport.Section<ProbeReport.V4L2Report>
    ) -> [(
        path: String, name: String
    )] {
        v4l2.items.filter { node in
            node.checks.contains { $0.requirement == ImporterRequirement.Kind.contiguousMemory.rawValue }
        }
        .map { ($0.path, $0.name) }
    }

    /// Each heap's buffers of `contiguitySizes`, queued whole on the node with its format made as
    /// small as the driver allows (then put back): "yes" when accepted, "no" when refused for
    /// contiguity (EFAULT), otherwise what happened. nil when the node cannot be used.
    private func tryContiguity(
        of heaps: [String], with node: (path: String, name: String)
    ) -> (importer: String, answers: [String: [Int: String]])? {
        guard let device = try? V4L2Device(path: node.path, kernel: kernel) else { return nil }
        let found = tryContiguity(of: heaps, with: device, name: node.name)
        try? device.close()
        return found
    }

    private func tryContiguity(
        of heaps: [String], with device: borrowing V4L2Device, name: String
    ) -> (importer: String, answers: [String: [Int: String]])? {
        guard let type = device.capability.streamingType, let original = try? device.format(type) else { return nil }
        defer { _ = try? device.setFormat(original) }
        var smallest = original
        (smallest.width, smallest.height) = (16, 16)
        guard let shrunk = try? device.setFormat(smallest), shrunk.planes.count == 1 else { return nil }
        let needs = Int(shrunk.planes[0].sizeImage)
        var answers: [String: [Int: String]] = [:]
        for heap in heaps {
            for size in Self.contiguitySizes {
                guard size >= needs else {
                    answers[heap, default: [:]][size] = "not tried: \(name) needs at least \(needs) bytes"
                    continue
                }
                let tried = Result {
                    let buffer = try DmaHeap(heap, kernel: kernel).allocate(length: size, name: Self.debugName)
                    let queued = Result {
                        try queueOnce(device, type: type, dmaBufs: [buffer.fd], sizes: [needs], whole: [size])
                    }
                    try buffer.close()
                    try queued.get()
                }
                answers[heap, default: [:]][size] =
                    switch tried {
                    case .success: "yes"
                    case .failure(let error as KernelError) where error.errno == .EFAULT: "no"
                    case .failure(let error): "not known: \(Self.briefly(error))"
                    }
            }
        }
        return ("\(name) at \(shrunk.width)x\(shrunk.height) (\(needs) bytes)", answers)
    }
}
