import ArgumentParser
import DmaBufKit
import Foundation
import Logging

struct DmaBufProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabuf-probe",
        abstract: "Find out which dma-buf paths this kernel really supports, by trying them.",
        usage: """
            dmabuf-probe [--json | --ktap] [--junit <file>] [--matrix] [-d <device>]
            dmabuf-probe --advise <device>... [--format <f> --size <WxH> --count <n>]
            dmabuf-probe --inventory [--json]
            dmabuf-probe --simulated [--simulated-version 6.1|6.12] [<options>]
            """,
        discussion: """
            Tries every dma-buf heap under /dev/dma_heap (allocate 4 KiB and 1 MiB, check the \
            memory is zero-filled, write and read it back under DMA_BUF_IOCTL_SYNC, name it and \
            find the name in /proc/self/fdinfo), /dev/udmabuf (create from a sealed memfd, \
            create-list, coherency between the memfd and the dma-buf), and sync_file export / \
            import on a dma-buf (with sw_sync fences when debugfs has them), each DRM device \
            (PRIME both ways, AddFB2, scanout with writeback) and each V4L2 video node (EXPBUF, \
            DMABUF import from a heap and from udmabuf). With --matrix, every exporter is tried \
            with every importer. A refusal is explained by differential tries (the same size \
            from the CMA heap and the system heap, one 1 MiB chunk, udmabuf vs the system heap): \
            "needs contiguous memory" or "needs vmap" is the device's requirement, with the \
            evidence, and does not fail the probe; a refusal nothing explains does.

            With --advise DEV…, which allocator every listed device accepts for --format and \
            --size, each tried: scattered memory (system heap, udmabuf) when every device takes \
            it, a CMA heap when one needs contiguous memory (with its room for --count \
            buffers), else a device's own buffers. It sets each listed V4L2 node's format to \
            the one asked, as a pipeline would.

            With --device, only that device is probed (and, with --matrix, only as importer: \
            which memory it takes). Ctrl-C (SIGINT) or SIGTERM stops at the next check and \
            prints what was found, marked interrupted; a second signal exits at once.

            \(ExitStatus.table)
              (probe: 2 also when neither heaps nor udmabuf exist)

            Examples:
              dmabuf-probe                    probe this machine's kernel
              dmabuf-probe --json > p.json    the same, as JSON for CI (schema in README.md)
              dmabuf-probe --ktap --matrix    a KTAP test per check and matrix cell (farms)
              dmabuf-probe --inventory        the devices, as drm_info and v4l2-ctl --all
              dmabuf-probe --matrix           also the exporter × importer sharing matrix
              dmabuf-probe -d vivid-000-vid-cap --matrix   one V4L2 node, and what it imports
              dmabuf-probe -d 0               /dev/video0, as v4l2-ctl -d 0
              dmabuf-probe -d vkms            the DRM device of that driver
              dmabuf-probe --advise vivid-002-vid-cap vkms --size 640x480
                                              which memory a camera and a display can share
              dmabuf-probe --simulated        probe DmaBufKit's simulated Linux 6.1 kernel
              dmabuf-probe --simulated --simulated-version 6.12   … or its model of 6.12
            """,
        version: DmaBufKitVersion.string)

    @Flag(help: "Print the report as JSON (stable schema, see README.md).")
    var json = false

    @Flag(help: "Print the report as KTAP (kernel selftest format, for KernelCI and LAVA): a test per check.")
    var ktap = false

    @Option(help: ArgumentHelp("Also write the checks as JUnit XML to this file.", valueName: "file"))
    var junit: String?

    @Flag(
        help:
            "Only list the devices: KMS CRTCs, encoders, connectors with modes, planes with formats and modifiers, writeback formats; V4L2 nodes with caps, formats, sizes."
    )
    var inventory = false

    @Flag(
        help:
            "Also try every exporter (heaps, udmabuf, dumb buffers, EXPBUF) with every importer (PRIME import + AddFB2, V4L2 DMABUF QBUF)."
    )
    var matrix = false

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Probe only this device: a path (/dev/video0, /dev/dri/card1), a number (0: /dev/video0), a V4L2 node name (vivid-000-vid-cap) or a DRM driver (vkms).",
            valueName: "device"))
    var device: String?

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Advise an allocator that every listed device accepts (each named as for --device).",
            valueName: "device"))
    var advise: [String] = []

    @Option(help: "With --advise: the pixel format, XR24, RG16 or YUYV.")
    var format = "XR24"

    @Option(help: "With --advise: the frame size WIDTHxHEIGHT.")
    var size = "1920x1080"

    @Option(help: "With --advise: how many buffers the pipeline needs (CMA room is checked for them).")
    var count = 4

    @Flag(help: "Probe the simulated kernel instead of this machine's.")
    var simulated = false

    @Option(help: "With --simulated: the kernel series the model follows (6.1 or 6.12).")
    var simulatedVersion: SimulatedVersion = .linux6_1

    @Flag(name: .shortAndLong, help: "Log each step to standard error.")
    var verbose = false

    func validate() throws {
        if device?.isEmpty == true {
            throw ValidationError("--device names nothing: a path, a number, a V4L2 node name or a DRM driver")
        }
        if json && ktap { throw ValidationError("--json and --ktap each are the whole output: choose one") }
        if let junit {
            // Found now, not after a matrix run of minutes.
            do { try OutputCheck.file(junit, for: "--junit \(junit)") } catch { throw ValidationError("\(error)") }
        }
        if inventory && (device != nil || matrix || ktap || junit != nil || !advise.isEmpty) {
            throw ValidationError("--inventory lists every device and tries nothing: it takes only --json")
        }
        if !advise.isEmpty && (device != nil || matrix || ktap || junit != nil) {
            throw ValidationError(
                "--advise probes the devices it lists: it takes none of --device, --matrix, --ktap, --junit")
        }
        if AllocatorAdvice.formats[format] == nil {
            throw ValidationError(
                "--format \(format) is not one the advisor knows: \(AllocatorAdvice.formats.keys.sorted().joined(separator: ", "))"
            )
        }
        do { _ = try PipelineConfiguration.parseSize(size) } catch { throw ValidationError("--size: \(error)") }
        if !(1...64).contains(count) { throw ValidationError("--count \(count) is out of range: 1…64") }
    }

    func run() throws {
        try ToolSupport.reportingBugs(tool: "dmabuf-probe", probe)
    }

    func probe() throws {
        ToolSupport.bootstrapLogging(verbose: verbose)
        let kernel = ToolSupport.kernel(simulated: simulated, version: simulatedVersion)
        var probe = Probe(kernel: kernel, logger: Logger(label: "dmabuf-probe"))
        var selected: ProbeDevice?
        if let device {
            do { selected = try probe.select(device) } catch {
                ToolSupport.warn("dmabuf-probe: \(error)")
                throw ExitCode(
                    error.errno == .EACCES || error.errno == .EPERM ? ExitStatus.permission : ExitStatus.nothingToTest)
            }
        }
        if inventory {
            let found = probe.inventory()
            print(
                json ? String(decoding: try ToolSupport.json(found), as: UTF8.self) : found.text,
                terminator: json ? "\n" : "")
            if found.drm.isEmpty && found.v4l2.isEmpty { throw ExitCode(ExitStatus.nothingToTest) }
            return
        }
        if !advise.isEmpty {
            var devices: [ProbeDevice] = []
            for name in advise {
                do { devices.append(try probe.select(name)) } catch {
                    ToolSupport.warn("dmabuf-probe: \(error)")
                    throw ExitCode(
                        error.errno == .EACCES || error.errno == .EPERM
                            ? ExitStatus.permission : ExitStatus.nothingToTest)
                }
            }
            let (width, height) = try PipelineConfiguration.parseSize(size)
            let advice = probe.advise(devices, format: format, width: width, height: height, count: count)
            print(json ? String(decoding: try ToolSupport.json(advice), as: UTF8.self) : advice.text)
            if advice.exitCode != 0 { throw ExitCode(advice.exitCode) }
            return
        }
        StopSignals.install()
        probe.stopRequest = { StopSignals.pending }
        let report = probe.run(matrix: matrix, device: selected)
        if let junit {
            do {
                try TestResult.junit(report.testResults, name: "dmabuf-probe").write(
                    toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                ToolSupport.warn("dmabuf-probe: cannot write the JUnit report \(junit): \(error)")
                throw ExitCode(ExitStatus.failed)
            }
        }
        if json {
            print(String(decoding: try ToolSupport.json(report), as: UTF8.self))
        } else if ktap {
            print(TestResult.ktap(report.testResults), terminator: "")
        } else {
            print(report.text)
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
