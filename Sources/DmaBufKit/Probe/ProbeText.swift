import DmaBufKernel

extension ProbeReport {
    /// The human report: one line per facility, details only where something is wrong.
    public var text: String {
        var lines: [String] = []
        lines.append(
            "dmabuf-probe: \(kernel.kind == "simulated" ? "SIMULATED kernel" : "Linux") \(kernel.release), page size \(kernel.pageSize)"
        )
        lines.append("")

        lines.append(Self.row("dma-buf heaps", heaps.status, KernelPaths.dmaHeapDirectory))
        if let reason = heaps.reason { lines.append(Self.why(reason, heaps.kernelOption)) }
        for heap in heaps.items {
            lines.append(Self.row("  " + heap.name, heap.status, Self.summary(heap.checks)))
            lines += Self.problems(heap.checks)
            if let facts = heap.facts { lines.append("                   " + Self.memory(facts)) }
        }
        if let tried = heaps.items.lazy.compactMap({ $0.facts?["contiguity_tried_with"] }).first {
            lines.append("                   (contiguous: as a contiguous importer found it, \(tried))")
        }

        let limits = ["size_limit_mb", "list_limit"].compactMap { key in udmabuf.facts[key].map { "\(key) \($0)" } }
        let udmabufSummary =
            udmabuf.status == .ok
            ? Self.summary(udmabuf.checks) + (limits.isEmpty ? "" : " (\(limits.joined(separator: ", ")))") : ""
        lines.append(
            Self.row("udmabuf", udmabuf.status, udmabuf.path.map { "\($0)  \(udmabufSummary)" } ?? udmabufSummary))
        if let reason = udmabuf.reason { lines.append(Self.why(reason, udmabuf.kernelOption)) }
        lines += Self.problems(udmabuf.checks)

        let via = syncFile.facts["buffer"].map { " (on a \($0) buffer)" } ?? ""
        lines.append(Self.row("sync_file", syncFile.status, Self.summary(syncFile.checks) + via))
        if let reason = syncFile.reason { lines.append(Self.why(reason, syncFile.kernelOption)) }
        lines += Self.problems(syncFile.checks)

        lines.append(Self.row("DRM", drm.status, drm.status == .ok ? KernelPaths.drmDirectory : ""))
        if let reason = drm.reason { lines.append(Self.why(reason, drm.kernelOption)) }
        for device in drm.items {
            let caps = ["kms", "writeback"].filter { device.facts[$0] == "true" }
            let label = "\(device.path) \(device.driver)" + (caps.isEmpty ? "" : " (\(caps.joined(separator: ", ")))")
            lines.append(Self.row("  " + device.driver, device.status, "\(label): \(Self.summary(device.checks))"))
            lines += Self.problems(device.checks)
        }

        lines.append(Self.row("V4L2", v4l2.status, v4l2.status == .ok ? KernelPaths.videoSysfsDirectory : ""))
        if let reason = v4l2.reason { lines.append(Self.why(reason, v4l2.kernelOption)) }
        for node in v4l2.items {
            lines.append(
                Self.row(
                    "  " + node.name, node.status,
                    "\(node.path) \(node.driver) (\(node.facts["type"] ?? "?")): \(Self.summary(node.checks))"))
            lines += Self.problems(node.checks)
        }

        if let interfaces {
            lines.append(Self.row("newer ioctls", interfaces.status, "each tried; missing = this kernel has none"))
            for item in interfaces.items {
                let since = "Linux \(item.since)"
                lines.append(
                    Self.row(
                        "  " + item.name, item.status,
                        "\(since)\(item.path.map { ", on \($0)" } ?? ""): \(item.detail)"))
            }
        }

        lines.append("")
        if let matrix {
            lines.append("")
            lines.append(matrix.text)
        }
        if let device { lines.append("Only \(device) was probed (--device).") }
        switch exitCode {
        case _ where interruptedBy != nil:
            lines.append(
                "Result: INTERRUPTED by \(interruptedBy ?? "a signal") (exit \(exitCode)); what was not tried is marked skipped."
            )
        case Self.exitOK: lines.append("Result: every dma-buf path present works.")
        case Self.exitFailure: lines.append("Result: some paths FAILED (exit 1); details above.")
        case Self.exitNothingPresent:
            lines.append("Result: this kernel has neither dma-buf heaps nor udmabuf (exit 2).")
            if kernel.kind != "simulated" {
                lines.append("To see what a capable kernel reports, run: dmabuf-probe --simulated")
            }
        case Self.exitPermission: lines.append("Result: some device nodes are not accessible to this user (exit 3).")
        default: lines.append("Result: exit \(exitCode).")
        }
        return lines.joined(separator: "\n")
    }

    static func row(_ name: String, _ status: ProbeStatus, _ detail: String) -> String {
        let label = name.padding(toLength: max(16, name.count + 1))  // long node names keep a space
        let mark = (status == .ok ? "ok" : status.rawValue.uppercased()).padding(toLength: 9)
        return "\(label)\(mark)\(detail)"
    }

    static func why(_ reason: String, _ option: String?) -> String {
        "                 \(reason)" + (option.map { "\n                 enable: \($0)" } ?? "")
    }

    /// "cma: 130520 of 131072 kB free (15 frames of 8 MiB fit now); contiguous at 4KiB yes, …".
    static func memory(_ facts: [String: String]) -> String {
        var parts = [facts["kind"] ?? "unknown"]
        if let total = facts["cma_total_kB"], let free = facts["cma_free_kB"] {
            parts.append("\(free) of \(total) kB free (\(facts["fits_now_8MiB"] ?? "?") buffers of 8 MiB fit now)")
        }
        let contiguity = Probe.contiguitySizes.compactMap { size -> String? in
            let label = Probe.sizeLabel(size)
            return facts["contiguous_\(label)"].map { "\(label) \($0)" }
        }
        if !contiguity.isEmpty { parts.append("contiguous at " + contiguity.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }

    /// "allocate, zero-filled, … (4096, 1048576 bytes)" for the checks that passed.
    static func summary(_ checks: [ProbeCheck]) -> String {
        var names: [String] = []
        for check in checks where check.status == .ok && !names.contains(check.name) { names.append(check.name) }
        let sizes = Set(checks.compactMap(\.size)).sorted().map(byteCount)
        return names.joined(separator: ", ") + (sizes.count > 1 ? " at \(sizes.joined(separator: ", "))" : "")
    }

    static func problems(_ checks: [ProbeCheck]) -> [String] {
        checks.filter { $0.status != .ok }.map { check in
            let size = check.size.map { " (\(byteCount($0)))" } ?? ""
            return
                "                   \(check.status.rawValue): \(check.name)\(size): \(check.detail ?? check.errno ?? "")"
        }
    }

    static func byteCount(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0
            ? "\(bytes >> 20) MiB"
            : bytes >= 1024 && bytes % 1024 == 0 ? "\(bytes >> 10) KiB" : "\(bytes) B"
    }
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self + " " : self + String(repeating: " ", count: length - count)
    }
}
