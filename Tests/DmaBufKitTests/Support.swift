import DmaBufKit
import DmaBufSimulation
import Foundation
import Testing

extension Tag {
    /// Needs real device nodes (dma-buf heaps, udmabuf, sw_sync).
    @Tag static var device: Self
}

/// Every test that needs the real kernel's devices lives under this suite: serialized, because
/// their leak checks count the whole process's descriptors, and skipped with the reason
/// when the nodes are absent — unless the run requires them (the VM rig), where a missing
/// node must fail the run instead of skipping it.
/// The VM runs them with `--filter DeviceTests`, a pattern on test names: no other suite may
/// have "DeviceTests" in its name (one that did ran unserialized beside them there and broke
/// their descriptor counts).
@Suite(.tags(.device), .serialized, .enabled(if: Devices.available || Devices.required, Devices.skipReason))
struct DeviceTests {}

/// What the real kernel must offer for the device tests, and why a test skips without it.
enum Devices {
    static let systemHeap = "/dev/dma_heap/system"
    static let reservedHeap = "/dev/dma_heap/reserved"
    static var all: [String] {
        [systemHeap, reservedHeap, KernelPaths.udmabuf, KernelPaths.swSync, KernelPaths.dmaBufDebugList]
    }
    static var missing: [String] { all.filter { !FileManager.default.fileExists(atPath: $0) } }
    static var available: Bool { missing.isEmpty }
    /// Set by `make vm-test` inside the VM.
    static var required: Bool { ProcessInfo.processInfo.environment["DMABUFKIT_REQUIRE_DEVICES"] == "1" }
    static var skipReason: Comment {
        "needs \(missing.joined(separator: ", ")) (a kernel with dma-buf heaps incl. CMA 'reserved', udmabuf and sw_sync, as root; see README.md, Tests)"
    }
}

/// Open descriptors and mappings, to prove an operation leaked nothing.
struct ResourceCount: Equatable, CustomStringConvertible {
    var descriptors: Int
    var mappings: Int
    /// Simulated: GEM handles and framebuffers. Real: framebuffers debugfs lists on all DRM devices.
    var drmObjects: Int

    /// The simulation counts exactly what went through it. The real kernel is counted from
    /// /proc/self and debugfs, which is only meaningful while no other test runs (device suites
    /// are serialized).
    static func of(_ kernel: any Kernel) -> ResourceCount {
        if let simulated = kernel as? SimulatedKernel {
            return ResourceCount(
                descriptors: simulated.openDescriptorCount, mappings: simulated.mappingCount,
                drmObjects: simulated.drmObjectCount)
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
        let maps =
            (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8))?
            .split(separator: "\n").filter {
                $0.contains("dmabuf") || $0.contains("memfd:") || $0.contains("/dev/dri/")
            }.count ?? -1
        let debugfs = "/sys/kernel/debug/dri"
        let framebuffers = ((try? FileManager.default.contentsOfDirectory(atPath: debugfs)) ?? []).reduce(0) {
            total, minor in
            let text = (try? String(contentsOfFile: "\(debugfs)/\(minor)/framebuffer", encoding: .utf8)) ?? ""
            return total + text.split(separator: "\n").filter { $0.hasPrefix("framebuffer[") }.count
        }
        return ResourceCount(descriptors: fds, mappings: maps, drmObjects: framebuffers)
    }

    var description: String { "\(descriptors) fds, \(mappings) mappings, \(drmObjects) DRM objects" }
}

/// Runs `body` and expects it to leave no descriptor or mapping behind.
func expectNoLeaks(
    _ kernel: any Kernel, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) rethrows {
    let before = ResourceCount.of(kernel)
    try body()
    let after = ResourceCount.of(kernel)
    #expect(after == before, "leaked: before \(before), after \(after)", sourceLocation: sourceLocation)
}

/// Runs `body`, which must fail with an error of type `E`; returns it (nil after recording an issue).
@discardableResult
func expectError<E: Error>(
    _ expected: E.Type, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> E? {
    do {
        try body()
        Issue.record("expected \(E.self), but it succeeded", sourceLocation: sourceLocation)
    } catch let error as E {
        return error
    } catch {
        Issue.record("expected \(E.self), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Expects `body` to throw a KernelError with `errno`, and returns it for further checks.
@discardableResult
func expectKernelError(
    _ errno: Errno, because source: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> KernelError? {
    let per = source.map { " per \($0)" } ?? ""
    do {
        try body()
        Issue.record("expected \(errno.name)\(per), but it succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as KernelError {
        #expect(error.errno == errno, "\(error) — expected \(errno.name)\(per)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected KernelError \(errno.name)\(per), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A fresh directory under the system's temporary one, removed with everything in it when
/// the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("\(NSTemporaryDirectory())/dmabufkit-test.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw KernelError("mkdtemp", Errno(rawValue: errno), path: NSTemporaryDirectory())
        }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// One of the package's command-line tools, run as a process: its exit status and output.
struct ToolRun {
    var status: Int32
    var output: String
    var errors: String

    /// The tool built beside this test bundle (`swift test` builds them: the test target depends on them).
    static func path(of tool: String) -> String {
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: me).deletingLastPathComponent()
        while directory.path != "/"
            && !FileManager.default.fileExists(atPath: directory.appendingPathComponent(tool).path)
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent(tool).path
    }

    /// Runs `tool` with `arguments`; `whileRunning` gets the process once it started (to signal it).
    static func run(
        _ tool: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 120,
        whileRunning: ((Running) -> Void)? = nil
    ) throws -> ToolRun {
        let process = Process()
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.executableURL = URL(fileURLWithPath: path(of: tool))
        process.arguments = arguments
        // Output to files, not pipes: nothing to drain while the tool runs.
        let scratch = try TemporaryDirectory()
        let (outputPath, errorsPath) = ("\(scratch.path)/out", "\(scratch.path)/err")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsPath))
        defer { try? output.close(); try? errors.close() }
        (process.standardOutput, process.standardError) = (output, errors)
        try process.run()
        // A tool that hangs fails its test (killed: status 137) instead of hanging the suite.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        whileRunning?(ToolRun.Running(process: process, errorsPath: errorsPath))
        process.waitUntilExit()
        watchdog.cancel()
        let outputData = FileManager.default.contents(atPath: outputPath) ?? Data()
        let errorData = FileManager.default.contents(atPath: errorsPath) ?? Data()
        let status =
            process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return ToolRun(
            status: status, output: String(decoding: outputData, as: UTF8.self),
            errors: String(decoding: errorData, as: UTF8.self))
    }

    /// A tool still running: its process, and what it wrote to standard error so far.
    struct Running {
        let process: Process
        let errorsPath: String

        /// Waits (up to a minute) until the tool's standard error contains `text`: a point the
        /// tool reached, not a guess at how long it takes to get there.
        func waitForErrors(containing text: String) -> Bool {
            for _ in 0..<600 {
                if let data = FileManager.default.contents(atPath: errorsPath),
                    String(decoding: data, as: UTF8.self).contains(text)
                {
                    return true
                }
                if !process.isRunning { return false }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }
    }
}

/// One case of a subsystem's behaviour, written once and run on every kernel: each subsystem
/// lists its shared cases, and a parameterized test runs the list on the simulated kernel and
/// another (among the device tests) on the real one.
struct KernelCase: Sendable, CustomTestStringConvertible {
    let name: String
    let body: @Sendable (any Kernel) throws -> Void
    init(_ name: String, _ body: @escaping @Sendable (any Kernel) throws -> Void) {
        (self.name, self.body) = (name, body)
    }
    var testDescription: String { name }
    func run(on kernel: any Kernel) throws { try body(kernel) }
}

/// Whether an importer that maps dma-bufs in the kernel takes a udmabuf on this kernel, found
/// by one try, never by the release: a udmabuf queued (DMABUF QBUF) into vivid's capture node,
/// whose vb2-vmalloc maps it with the exporter's vmap. 6.1's udmabuf has no vmap, so QBUF fails
/// with EFAULT (videobuf2-vmalloc.c vb2_vmalloc_map_dmabuf: dma_buf_vmap fails); 6.12's has
/// one (udmabuf.c vmap_udmabuf, since 6.2). Tests that meet the same need through another
/// importer (vkms's composer) check that it agrees with this answer.
func udmabufMapsInTheKernel(_ kernel: any Kernel) throws -> Bool {
    let device = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
    let size = Int(try device.format(.videoCapture).planes[0].sizeImage)
    let page = kernel.pageSize
    let memfd = try Memfd(kernel: kernel, name: "vmap-try", length: (size + page - 1) / page * page)
    let buffer = try UdmabufDevice(kernel: kernel).create(from: memfd)
    let queue = try V4L2Queue(device: device, type: .videoCapture, memory: .dmabuf, count: 1)
    let works: Bool
    do {
        _ = try queue.enqueue(BufferIndex(rawValue: 0), dmaBufs: [buffer.fd])
        works = true
    } catch {
        guard error.errno == .EFAULT else { throw error }
        works = false
    }
    try queue.release()
    try buffer.close()
    try device.close()
    print("udmabuf on this kernel: \(works ? "an importer's vmap works" : "an importer's vmap fails (QBUF EFAULT)")")
    return works
}
