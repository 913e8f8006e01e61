import DmaBufKernel
import DmaBufKit
import DmaBufSimulation
import Foundation
import Testing

@Suite("Device inventory")
struct InventoryTests {
    /// The simulated vkms as vkms describes itself; vgem has no KMS; every video node listed
    /// with the formats its queues enumerate.
    @Test func theInventoryListsWhatTheKernelHas() throws {
        let kernel = SimulatedKernel()
        var found: DeviceInventory?
        expectNoLeaks(kernel) { found = Probe(kernel: kernel).inventory() }
        let inventory = try #require(found)
        let vgem = try #require(inventory.drm.first { $0.driver == "vgem" })
        #expect(vgem.reason?.contains("no KMS") == true && vgem.connectors.isEmpty, "\(vgem)")
        let vkms = try #require(inventory.drm.first { $0.driver == "vkms" })
        #expect(vkms.reason == nil && vkms.crtcs.count == 1)
        #expect(vkms.encoders.map(\.possibleClones) == [1, 2])
        let writeback = try #require(vkms.connectors.first { $0.name == "Writeback-1" })
        #expect(writeback.writebackFormats?.contains("XR24") == true)
        #expect(vkms.connectors.first { $0.name == "Virtual-1" }?.status == "connected")
        #expect(vkms.planes.map(\.type).sorted() == ["Cursor", "Primary"])
        #expect(vkms.planes.allSatisfy { $0.modifiers?.values.allSatisfy { $0 == ["0x0"] } == true })
        #expect(inventory.v4l2.count == (try V4L2Device.nodes(kernel: kernel)).count)
        let vim2m = try #require(inventory.v4l2.first { $0.name == "vim2m" })
        #expect(vim2m.queues.map(\.type) == ["video-output", "video-capture"], "\(vim2m)")
        #expect(vim2m.deviceCaps.contains("Video Memory-to-Memory"))
        let camera = try #require(inventory.v4l2.first { $0.name == "vivid-000-vid-cap" })
        #expect(camera.queues.first?.formats.contains { $0.fourcc == "XR24" && $0.sizes.contains("640x480") } == true)
        let decoded = try JSONDecoder().decode(DeviceInventory.self, from: try JSONEncoder().encode(inventory))
        #expect(decoded == inventory)
        #expect(inventory.text.contains("writeback formats: XR24"))
    }

    @Test func theCommandListsAndRefusesToTry() throws {
        let run = try ToolRun.run("dmabuf-probe", ["--simulated", "--inventory", "--json"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(try JSONDecoder().decode(DeviceInventory.self, from: Data(run.output.utf8)).drm.count == 2)
        let refused = try ToolRun.run("dmabuf-probe", ["--simulated", "--inventory", "--matrix"])
        #expect(refused.status == 64 && refused.errors.contains("--inventory"), "\(refused.errors)")
    }
}

extension DeviceTests {
    @Suite("The inventory against drm_info on the real kernel")
    struct InventoryOnDevices {
        /// Every KMS object drm_info -j reports (Debian's drm-info, over libdrm) is in the
        /// inventory with the same ids, types, masks, modes, formats and modifiers.
        @Test func theInventoryAgreesWithDrmInfo() throws {
            let drmInfo = "/usr/bin/drm_info"
            try #require(
                FileManager.default.isExecutableFile(atPath: drmInfo),
                "drm_info (Debian's drm-info) is needed: make vm-test installs it")
            // drm_info runs by posix_spawn, not Foundation's Process, which closes its pipes
            // on a background queue after the test: the next test's descriptor count saw it.
            // Ours first: GETCONNECTOR probes a connector (vkms' writeback one gets its modes and
            // status then); drm_info reads the probed state without probing (GetConnectorCurrent).
            let kernel = LinuxKernel()
            var found: DeviceInventory?
            expectNoLeaks(kernel) { found = Probe(kernel: kernel).inventory() }
            let ours = try #require(found)
            let scratch = try TemporaryDirectory()
            let output = "\(scratch.path)/drm_info.json"
            #expect(try runToFile([drmInfo, "-j"], output: output) == 0)
            let data = try Data(contentsOf: URL(fileURLWithPath: output))
            let theirs = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
            #expect(!theirs.isEmpty)
            for (path, device) in theirs {
                let mine = try #require(ours.drm.first { $0.path == path }, "\(path) not in the inventory")
                func objects(_ key: String) -> [[String: Any]] { device[key] as? [[String: Any]] ?? [] }
                func number(_ object: [String: Any], _ key: String) -> UInt32 {
                    (object[key] as? NSNumber)?.uint32Value ?? 0
                }
                #expect(mine.crtcs == objects("crtcs").map { number($0, "id") }, "\(path) CRTCs")
                #expect(
                    mine.encoders.map { "\($0.id) \($0.type) \($0.possibleCRTCs) \($0.possibleClones)" }
                        == objects("encoders").map {
                            "\(number($0, "id")) \(DRMEncoderType(rawValue: number($0, "type")).name) "
                                + "\(number($0, "possible_crtcs")) \(number($0, "possible_clones"))"
                        }, "\(path) encoders")
                let connectors = objects("connectors")
                #expect(mine.connectors.map(\.id) == connectors.map { number($0, "id") })
                for (connector, their) in zip(mine.connectors, connectors) {
                    let status = ["", "connected", "disconnected", "unknown"][Int(min(number(their, "status"), 3))]
                    #expect(
                        connector.status == status
                            && connector.encoders == (their["encoders"] as? [NSNumber])?.map(\.uint32Value))
                    let modes = (their["modes"] as? [[String: Any]] ?? []).map {
                        "\($0["name"] as? String ?? "")@\(number($0, "vrefresh")) \(number($0, "clock"))"
                    }
                    #expect(
                        connector.modes.map { "\($0.name)@\($0.refresh) \($0.clockKHz)" } == modes, "\(connector.name)")
                    let properties = their["properties"] as? [String: [String: Any]] ?? [:]
                    let formats = (properties["WRITEBACK_PIXEL_FORMATS"]?["data"] as? [NSNumber])?.map {
                        FourCC.name($0.uint32Value)
                    }
                    #expect(connector.writebackFormats == formats, "\(connector.name) writeback formats")
                }
                let planes = objects("planes")
                #expect(mine.planes.map(\.id) == planes.map { number($0, "id") })
                for (plane, their) in zip(mine.planes, planes) {
                    #expect(plane.possibleCRTCs == number(their, "possible_crtcs"))
                    #expect(
                        plane.formats == (their["formats"] as? [NSNumber] ?? []).map { FourCC.name($0.uint32Value) })
                    let properties = their["properties"] as? [String: [String: Any]] ?? [:]
                    let type = properties["type"]
                    let spec = (type?["spec"] as? [[String: Any]] ?? []).first {
                        number($0, "value") == (type?["value"] as? NSNumber)?.uint32Value
                    }
                    #expect(plane.type == spec?["name"] as? String, "plane \(plane.id) type")
                    var modifiers: [String: [String]] = [:]
                    for entry in properties["IN_FORMATS"]?["data"] as? [[String: Any]] ?? [] {
                        let modifier = "0x" + String((entry["modifier"] as? NSNumber)?.uint64Value ?? 0, radix: 16)
                        for format in entry["formats"] as? [NSNumber] ?? [] {
                            modifiers[FourCC.name(format.uint32Value), default: []].append(modifier)
                        }
                    }
                    #expect((plane.modifiers ?? [:]) == modifiers, "plane \(plane.id) IN_FORMATS")
                }
            }
        }
    }
}

/// Runs a program to completion with its standard output to `output`; every descriptor this
/// process opens for it is closed before returning. Returns the exit status.
func runToFile(_ arguments: [String], output: String) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
    try #require(spawned == 0, "posix_spawn \(arguments[0]): errno \(spawned)")
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}
