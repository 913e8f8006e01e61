import DmaBufKernel

/// The DRM part of the probe: for each card node, its driver and caps, then PRIME export of a
/// dumb buffer, PRIME import of a heap buffer and a udmabuf, AddFB2, and on a KMS device with a
/// writeback connector a scanout whose written-back pixels are compared with what was shown.
extension Probe {
    static let drmSide = 64

    func probeDRM(only selected: String? = nil) -> ProbeReport.Section<ProbeReport.DRMReport> {
        let nodes: [String]
        do { nodes = try DRMDevice.nodes(kernel: kernel).filter { selected == nil || $0 == selected } } catch {
            return .init(status: status(of: error), reason: error.description, kernelOption: nil, items: [])
        }
        guard !nodes.isEmpty else {
            return .init(
                status: .missing, reason: "\(KernelPaths.drmDirectory) has no card node",
                kernelOption: "CONFIG_DRM and a driver (e.g. CONFIG_DRM_VKMS, CONFIG_DRM_VGEM)", items: [])
        }
        let items = nodes.map(probeDRMDevice)
        let statuses = items.map(\.status)
        return .init(
            status: statuses.contains(.failed) ? .failed : statuses.contains(.denied) ? .denied : .ok, reason: nil,
            kernelOption: nil, items: items)
    }

    func probeDRMDevice(_ path: String) -> ProbeReport.DRMReport {
        logger.debug("probing DRM device", metadata: ["path": "\(path)"])
        do {
            let device = try DRMDevice(path: path, kernel: kernel)
            let report = probeOpenedDRMDevice(device)
            try? device.close()
            return report
        } catch {
            return .init(
                path: path, driver: "unknown", status: status(of: error), facts: [:], checks: [failure("open", error)])
        }
    }

    func probeOpenedDRMDevice(_ device: borrowing DRMDevice) -> ProbeReport.DRMReport {
        // What the kernel answered: a cap it refuses to report (vgem, no modesetting: EOPNOTSUPP)
        // is "not reported", not false.
        var facts: [String: String] = [:]
        var answers: [DRMCapability: Result<UInt64, KernelError>] = [:]
        for capability in [DRMCapability.prime, .dumbBuffer, .addFB2Modifiers] {
            do { answers[capability] = .success(try device.capability(capability)) } catch {
                answers[capability] = .failure(error)
            }
        }
        func fact(_ capability: DRMCapability, _ holds: (UInt64) -> Bool) -> String {
            switch answers[capability]! {
            case .success(let value): "\(holds(value))"
            case .failure(let error): "not reported (DRM_IOCTL_GET_CAP \(error.errno.name))"
            }
        }
        facts["dumb_buffer"] = fact(.dumbBuffer) { $0 == 1 }
        facts["prime_import"] = fact(.prime) { DRMPrimeCapability(rawValue: $0).contains(.importing) }
        facts["prime_export"] = fact(.prime) { DRMPrimeCapability(rawValue: $0).contains(.exporting) }
        facts["addfb2_modifiers"] = fact(.addFB2Modifiers) { $0 == 1 }
        let pipe = try? DisplayPipe(device: device)
        facts["kms"] = "\(pipe != nil)"
        facts["writeback"] = "\(pipe?.writeback != nil)"

        let side = Self.drmSide
        var checks: [ProbeCheck] = []
        checks.append(
            check("dumb-export", size: side * side * 4) {
                let buffer = try device.createDumbBuffer(width: side, height: side)
                let shared = try device.export(buffer)
                try shared.close()
                try buffer.close()
            })
        checks.append(
            check("import-system-heap", size: side * side * 4) {
                let buffer = try DmaHeap("system", kernel: kernel).allocate(length: side * side * 4)
                let imported = try device.importBuffer(buffer)
                try imported.close()
                try buffer.close()
            })
        checks.append(
            check("import-udmabuf", size: side * side * 4) {
                let memfd = try Memfd(kernel: kernel, name: Self.debugName, length: side * side * 4)
                let buffer = try UdmabufDevice(kernel: kernel).create(from: memfd)
                let imported = try device.importBuffer(buffer)
                try imported.close()
                try buffer.close()
            })
        if pipe != nil {
            checks.append(
                check("addfb2") {
                    let buffer = try device.createDumbBuffer(width: side, height: side)
                    let framebuffer = try device.addFramebuffer(
                        DRMFramebufferRequest(
                            width: UInt32(side), height: UInt32(side), format: DRMFormat.xrgb8888,
                            handles: [buffer.handle], pitches: [UInt32(buffer.pitch!)]))
                    try framebuffer.remove()
                    try buffer.close()
                })
        }
        if let pipe, pipe.writeback != nil {
            checks.append(check("scanout-writeback") { try expectWritebackMatches(pipe, device) })
        }
        // A missing heap or udmabuf is the other sections' finding, not this device's failure.
        for index in checks.indices where checks[index].status == .missing { checks[index].status = .skipped }
        let overall = checks.allSatisfy { $0.status == .ok || $0.status == .skipped } ? ProbeStatus.ok : checks.overall
        return ProbeReport.DRMReport(
            path: device.path, driver: device.driver, status: overall, facts: facts, checks: checks)
    }

    /// Shows a dumb buffer with the probe's pattern and compares the written-back screen (RGB).
    func expectWritebackMatches(_ pipe: DisplayPipe, _ device: borrowing DRMDevice) throws {
        let shown = try device.createDumbBuffer(width: Int(pipe.mode.hdisplay), height: Int(pipe.mode.vdisplay))
        try device.withMapping(shown) { fill($0, seed: 0x5a) }
        try expectScanout(of: shown.handle, pitch: shown.pitch!, pipe, device)
        try shown.close()
    }

    /// Imports `buffer` (at least a full-screen XRGB8888 frame), fills it with the probe's
    /// pattern through its own mapping, shows it full screen and, where the device has a
    /// writeback connector, compares the written-back screen; otherwise the commit is the try.
    func expectScanout(of buffer: borrowing DmaBuf, _ pipe: DisplayPipe, _ device: borrowing DRMDevice) throws {
        try buffer.write { fill($0, seed: 0x5a) }
        let imported = try device.importBuffer(buffer)
        try expectScanout(of: imported.handle, pitch: Int(pipe.mode.hdisplay) * 4, pipe, device)
        try imported.close()
    }

    private func expectScanout(
        of handle: GEMHandle, pitch: Int, _ pipe: DisplayPipe, _ device: borrowing DRMDevice
    ) throws {
        let width = Int(pipe.mode.hdisplay), height = Int(pipe.mode.vdisplay)
        let shownFB = try device.addFramebuffer(
            DRMFramebufferRequest(
                width: UInt32(width), height: UInt32(height), format: DRMFormat.xrgb8888, handles: [handle],
                pitches: [UInt32(pitch)]))
        guard pipe.writeback != nil else {
            try pipe.show(shownFB, on: device).close()
            try pipe.disable(on: device)
            try shownFB.remove()
            return
        }
        let target = try device.createDumbBuffer(width: width, height: height)
        let targetPitch = target.pitch!
        let targetFB = try device.addFramebuffer(
            DRMFramebufferRequest(
                width: UInt32(width), height: UInt32(height), format: DRMFormat.xrgb8888, handles: [target.handle],
                pitches: [UInt32(targetPitch)]))
        let frame = try pipe.show(shownFB, on: device, writebackInto: targetFB.id)
        let written = try frame.writeback?.wait(timeout: .seconds(5)) == true
        try frame.close()
        try pipe.disable(on: device)
        guard written else { throw ProbeMismatch("the writeback did not complete within 5 s") }
        // Every 4th row, whole: a stale, blank, shifted or partly scanned buffer still shows,
        // at a quarter of the cost (the probe runs this per KMS cell, debug builds included).
        let rows = stride(from: 0, to: height, by: 4)
        let wrong = try device.withMapping(target) { view in
            var wrong = 0
            for y in rows {
                for x in 0..<width {
                    let (got, want) = (y * targetPitch + x * 4, y * pitch + x * 4)
                    if view[got] != patternByte(want, seed: 0x5a) || view[got + 1] != patternByte(want + 1, seed: 0x5a)
                        || view[got + 2] != patternByte(want + 2, seed: 0x5a)
                    {
                        wrong += 1
                    }
                }
            }
            return wrong
        }
        try targetFB.remove()
        try shownFB.remove()
        try target.close()
        if wrong > 0 {
            throw ProbeMismatch(
                "\(wrong) of \((height + 3) / 4 * width) written-back pixels compared (every 4th row) differ from the scanned-out buffer"
            )
        }
    }
}
