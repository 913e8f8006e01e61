import DmaBufKernel

/// `allocator: auto`: the probe's advisor, asked about the pipeline's own devices, format and
/// size before anything streams.
extension Pipeline {
    func chooseAllocator(_ settings: PipelineConfiguration) throws -> (PipelineConfiguration, String) {
        let probe = Probe(kernel: kernel, logger: logger)
        var devices: [ProbeDevice] = []
        if settings.source != PipelineConfiguration.patternSource {
            let camera = try openSource(settings.source)
            let path = camera.path
            try camera.close()
            devices.append(try probe.select(path))
        }
        if !settings.sink.hasPrefix(PipelineConfiguration.fileSinkPrefix) {
            devices.append(try probe.select(settings.sink))
        }
        let advice = probe.advise(
            devices, format: "\(Self.pixelFormat.v4l2)", width: settings.width, height: settings.height,
            count: settings.buffers)
        logger.info("allocator auto: \(advice.choice ?? "none"): \(advice.reason)")
        var resolved = settings
        resolved.expectations.allocator = nil  // judged by the caller, against the choice
        switch advice.choice {
        case "system-heap"?: resolved.allocator = .systemHeap
        case "reserved-heap"?: resolved.allocator = .reservedHeap
        case "udmabuf"?: resolved.allocator = .udmabuf
        case let choice? where choice.hasPrefix("dumb:"): resolved.allocator = .dumb
        case let choice? where choice.hasPrefix("expbuf:") && settings.source != PipelineConfiguration.patternSource:
            resolved.strategy = .export
        default:
            let refusals = advice.candidates.flatMap { candidate in
                candidate.results.filter { $0.status != .ok }.map { "\(candidate.name) → \($0.device): \($0.detail)" }
            }
            throw PipelineError(
                "allocator auto: no allocator this pipeline can use suits every device (\(advice.choice ?? "none")): \(advice.reason) \(refusals.joined(separator: "; "))"
            )
        }
        return (resolved, "\(advice.choice!): \(advice.reason)")
    }

    /// A capture node that refused the allocator's buffer at QBUF (everything released by
    /// now): the probe's differential tries say what the node needs.
    func explainRefusal(_ error: KernelError) -> KernelError {
        guard error.operation == "VIDIOC_QBUF", configuration.strategy == .import,
            configuration.source != PipelineConfiguration.patternSource, configuration.mem2mem == nil,
            let path = error.path,
            let (type, format) = try? { () throws -> (V4L2BufferType?, V4L2Format?) in
                let node = try V4L2Device(path: path, kernel: kernel)
                let type = node.capability.streamingType
                let format = Result { try type.map { try node.format($0) } }
                try node.close()
                return (type, try format.get())
            }(), let type, let format, format.planes.count == 1
        else { return error }
        let probe = Probe(kernel: kernel, logger: logger)
        let size = Int(format.planes[0].sizeImage)
        guard
            let found = probe.findRequirement(
                importer: path, size: size, refusedExporter: configuration.allocator.rawValue,
                use: { buffer in
                    let node = try V4L2Device(path: path, kernel: kernel)
                    let queued = Result { try probe.queueOnce(node, type: type, dmaBufs: [buffer.fd], sizes: [size]) }
                    try node.close()
                    try queued.get()
                })
        else { return error }
        var explained = error  // the tries' finding replaces the generic explanation
        explained.reason = "the node \(found); --allocator auto chooses what every device takes"
        return explained
    }
}
