import ArgumentParser
import DmaBufKit
import Foundation
import Logging

@main
struct DmaBufProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabuf-probe",
        abstract: "Find out which dma-buf paths this kernel really supports, by trying them.",
        discussion: """
            Tries every dma-buf heap under /dev/dma_heap (allocate 4 KiB and 1 MiB, check the \
            memory is zero-filled, write and read it back under DMA_BUF_IOCTL_SYNC, name it and \
            find the name in /proc/self/fdinfo), /dev/udmabuf (create from a sealed memfd, \
            create-list, coherency between the memfd and the dma-buf), and sync_file export / \
            import on a dma-buf (with sw_sync fences when debugfs has them), each DRM device \
            (PRIME both ways, AddFB2, scanout with writeback) and each V4L2 video node (EXPBUF, \
            DMABUF import from a heap and from udmabuf). With --matrix, every exporter is tried \
            with every importer; a cell that fails on a known kernel limit says which.

            Exit status: 0 every present path works; 1 a path failed; 2 neither heaps nor \
            udmabuf exist; 3 a device node is not accessible to this user; 64 bad arguments.

            Examples:
              dmabuf-probe                    probe this machine's kernel
              dmabuf-probe --json > p.json    the same, as JSON for CI (schema in README.md)
              dmabuf-probe --matrix           also the exporter × importer sharing matrix
              dmabuf-probe --simulated        probe DmaBufKit's simulated Linux 6.1 kernel
            """)

    @Flag(help: "Print the report as JSON (stable schema, see README.md).")
    var json = false

    @Flag(help: "Also try every exporter (heaps, udmabuf, dumb buffers, EXPBUF) with every importer (PRIME import + AddFB2, V4L2 DMABUF QBUF).")
    var matrix = false

    @Flag(help: "Probe the simulated kernel instead of this machine's.")
    var simulated = false

    @Flag(name: .shortAndLong, help: "Log each step to standard error.")
    var verbose = false

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .warning
            return handler
        }
        let kernel: any Kernel = simulated ? SimulatedKernel() : LinuxKernel()
        let report = Probe(kernel: kernel, logger: Logger(label: "dmabuf-probe")).run(matrix: matrix)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
