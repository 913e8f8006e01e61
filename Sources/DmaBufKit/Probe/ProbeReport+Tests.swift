/// The probe as test results (`--ktap`, `--junit`): a group per facility and per device, a
/// test per check, a test per matrix cell. A limit the probe found (a device's requirement) and
/// a facility this kernel does not have are skips with the reason; a failure or a denied
/// device fails.
extension ProbeReport {
    public var testResults: [TestResult] {
        var tests: [TestResult] = []
        tests.append(
            Self.group(
                "dma-buf heaps", heaps,
                heaps.items.map { heap in TestResult(group: heap.name, heap.checks.map(Self.test)) }))
        tests.append(Self.facility("udmabuf", udmabuf))
        tests.append(Self.facility("sync_file", syncFile))
        tests.append(
            Self.group(
                "DRM", drm,
                drm.items.map { TestResult(group: "\($0.driver) \($0.path)", $0.checks.map(Self.test)) }))
        tests.append(
            Self.group("V4L2", v4l2, v4l2.items.map { TestResult(group: $0.name, $0.checks.map(Self.test)) }))
        if let interfaces {
            tests.append(
                Self.group(
                    "newer ioctls", interfaces,
                    interfaces.items.map { item in
                        let outcome: TestResult.Outcome =
                            switch item.status {
                            case .ok: .passed
                            case .failed, .denied: .failed(item.detail)
                            case .missing, .skipped, .unsupported: .skipped("\(item.status.rawValue): \(item.detail)")
                            }
                        return TestResult(item.name, outcome)
                    }))
        }
        if let matrix {
            tests.append(
                TestResult(
                    group: "sharing matrix",
                    matrix.exporters.map { exporter in
                        TestResult(
                            group: "export \(exporter)",
                            matrix.cells.filter { $0.exporter == exporter }.map { cell in
                                Self.test(
                                    "\(cell.exporter) to \(cell.importer)", cell.status,
                                    cell.requirement ?? cell.reason ?? cell.errno ?? "")
                            })
                    }, emptyReason: "no exporter found"))
        }
        if let interruptedBy {
            tests.append(
                TestResult("complete", .failed("interrupted by \(interruptedBy): what was not tried is skipped")))
        }
        return tests
    }

    static func test(_ check: ProbeCheck) -> TestResult {
        let name = check.name + (check.size.map { " " + byteCount($0) } ?? "")
        let reason = [check.requirement, check.operation, check.errno, check.detail].compactMap { $0 }
        return test(name, check.status, reason.joined(separator: ": "))
    }

    static func test(_ name: String, _ status: ProbeStatus, _ reason: String) -> TestResult {
        switch status {
        case .ok: TestResult(name, .passed)
        case .failed, .denied: TestResult(name, .failed("\(status.rawValue): \(reason)"))
        case .unsupported: TestResult(name, .skipped("limit: \(reason)"))
        case .missing, .skipped: TestResult(name, .skipped("\(status.rawValue): \(reason)"))
        }
    }

    static func group<Item>(_ name: String, _ section: Section<Item>, _ items: [TestResult]) -> TestResult {
        if items.isEmpty, section.status != .ok {
            return test(name, section.status, cause(section.reason, section.kernelOption))
        }
        return TestResult(group: name, items)
    }

    static func facility(_ name: String, _ facility: FacilityReport) -> TestResult {
        if facility.checks.isEmpty {
            return test(name, facility.status, cause(facility.reason, facility.kernelOption))
        }
        return TestResult(group: name, facility.checks.map(Self.test))
    }

    static func cause(_ reason: String?, _ option: String?) -> String {
        [reason, option.map { "needs \($0)" }].compactMap { $0 }.joined(separator: "; ")
    }
}
