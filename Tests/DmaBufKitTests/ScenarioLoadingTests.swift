import DmaBufKit
import Foundation
import Testing

/// Scenario files are strict and can never crash the loader: every numeric field with hostile
/// values, and a few hundred mutated documents from a committed seed corpus.
@Suite("Scenario files")
struct ScenarioLoadingTests {
    static let numericKeys = [
        "width", "height", "frames", "fps", "buffers", "verify-every", "test-pattern", "inject-stuck-display",
        "expect.min-fps", "expect.max-drops", "expect.max-late-drops",
        "expect.max-source-drops",
    ]
    /// Values no field may take (as YAML spells them).
    static let rejected = [
        "-1", "\(Int.max)", "99999999999999999999", "1e300", ".nan", ".inf", "-.inf", "many", "[1, 2]", "{a: 1}",
    ]

    static func document(_ key: String, _ value: String) -> String {
        let parts = key.split(separator: ".")
        if parts.count == 2 {
            return "name: sweep\npipeline:\n  frames: 10\n  \(parts[0]):\n    \(parts[1]): \(value)\n"
        }
        return "name: sweep\npipeline:\n  frames: 10\n  \(key): \(value)\n".replacingOccurrences(
            of: "  frames: 10\n  frames:", with: "  frames:")
    }

    @Test(arguments: numericKeys)
    func hostileValuesAreErrorsNamingTheField(_ key: String) {
        for value in Self.rejected {
            do {
                let scenario = try PipelineScenario.parse(Self.document(key, value), file: "sweep.yaml")
                Issue.record("\(key): \(value) was accepted: \(scenario.pipeline)")
            } catch {
                #expect(error.field == "pipeline.\(key)", "\(key): \(value): \(error)")
                #expect(error.file == "sweep.yaml" && error.line != nil, "\(error)")
            }
        }
    }

    @Test func unknownKeysAndConflictsNameTheLine() {
        let cases: [(String, String)] = [
            ("name: a\npipeline:\n  size: 1280x720\n", "sweep.yaml:3: pipeline.size: unknown key"),
            (
                "name: a\npipeline:\n  frames: 3\n  expect:\n    verify_every: 2\n",
                "sweep.yaml:5: pipeline.expect.verify_every: unknown key"
            ),
            ("name: a\nframes: 3\n", "sweep.yaml:2: frames: unknown key"),
            ("pipeline:\n  frames: 3\n", "name: is required"),
            (
                "name: a\npipeline:\n  mem2mem: vim2m\n  strategy: import\n",
                "sweep.yaml:4: pipeline.strategy import: a mem2mem stage"
            ),
            (
                "name: a\npipeline:\n  strategy: fast\n",
                "sweep.yaml:3: pipeline.strategy fast: must be one of export, import, copy"
            ),
            ("name: a\npipeline: [1, 2]\n", "pipeline: must be a mapping"),
            ("", "scenario: is empty"),
            ("name: [unclosed\n", "is not valid YAML"),
        ]
        for (text, expected) in cases {
            do {
                _ = try PipelineScenario.parse(text, file: "sweep.yaml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }

    /// A graph of stages and links loads into the same topology as the single-pipeline keys.
    @Test func aGraphIsTheSameTopologyAsTheKeys() throws {
        let graph = try PipelineScenario.parse(
            """
            name: g
            pipeline:
              stages:
                - {name: camera, capture: vivid-000-vid-cap}
                - {name: encode, encoder: stateful-encoder}
                - {name: decode, decoder: stateful-decoder}
                - {name: screen, display: vkms}
              links: [camera -> encode, encode -> decode, decode -> screen]
            """, file: "graph.yaml"
        ).pipeline
        let keys = try PipelineScenario.parse(
            "name: k\npipeline:\n  source: vivid-000-vid-cap\n  encoder: stateful-encoder\n  decoder: stateful-decoder\n  sink: vkms\n",
            file: "keys.yaml"
        ).pipeline
        #expect(
            [graph.source, graph.sink, graph.encoder, graph.decoder] == [
                keys.source, keys.sink, keys.encoder, keys.decoder,
            ])
        #expect(graph.graph?.stages.count == 4 && keys.graph == nil)
        let tee = try PipelineScenario.parse(
            """
            name: t
            pipeline:
              stages:
                - {name: camera, capture: vivid-002-vid-cap}
                - {name: screen, display: vkms}
                - {name: out, output: vivid-000-vid-out}
              links: [camera -> screen, camera -> out]
            """, file: "tee.yaml"
        ).pipeline
        #expect(tee.sink == "vkms" && tee.tee == "vivid-000-vid-out")
        #expect(tee.buffers == 8 && graph.buffers == 4, "a tee's default leaves its output buffers to start")
        let keysTee = try PipelineScenario.parse(
            "name: k\npipeline:\n  tee: vivid-000-vid-out\n  buffers: 5\n", file: "keys.yaml"
        ).pipeline
        #expect(keysTee.buffers == 5)
    }

    @Test func graphsThatDoNotHoldTogetherNameTheLine() {
        let stages = "  stages:\n    - {name: camera, capture: vivid}\n    - {name: screen, display: vkms}\n"
        let cases: [(String, String)] = [
            (
                stages + "  links: [camera -> screen]\n  sink: vkms\n",
                "pipeline.sink: describes the pipeline a second time"
            ),
            (
                stages + "  links: [camera -> nowhere]\n",
                "sweep.yaml:6: pipeline.links camera -> nowhere: must be `from -> to`"
            ),
            (stages + "  links: []\n", "pipeline.links screen: no link leads to this stage"),
            (
                "  stages:\n    - {name: camera, capture: vivid, display: vkms}\n  links: []\n",
                "needs exactly one of capture, pattern"
            ),
            ("  stages:\n    - {name: camera, camera: vivid}\n  links: []\n", "pipeline.stages.0.camera: unknown key"),
            (
                stages.replacingOccurrences(of: "display: vkms", with: "mem2mem: vim2m")
                    + "  links: [camera -> screen]\n",
                "capture -> mem2mem: is not a shape the pipeline builds"
            ),
        ]
        for (body, expected) in cases {
            do {
                _ = try PipelineScenario.parse("name: a\npipeline:\n" + body, file: "sweep.yaml")
                Issue.record("accepted: \(body)")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }

    /// Mutations of the seed corpus (Tests/Fuzz/scenario-seeds and the scenario suite), from a
    /// fixed seed: every document either loads into a configuration that validates, or is an
    /// error that names the file. (A trap would end the test process.)
    @Test func mutatedDocumentsNeverCrashTheLoader() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        var seeds: [String] = []
        for directory in ["Fuzz/scenario-seeds", "Scenarios"] {
            let folder = root.appendingPathComponent(directory)
            for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            where file.hasSuffix(".yaml") {
                seeds.append(try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8))
            }
        }
        #expect(seeds.count >= 18)
        var random = SplitMix64(seed: 0x5eed_d0c5)
        let fragments = [
            ":", "-", " ", "\n", "{", "}", "[", "]", "&a", "*a", "!!int", "\"", "'", "#", "0", "-1", "1e400", ".nan",
            "~", "\t",
            "frames", "fps", "expect", "pipeline", "name", "\u{0}", "é", "99999999999999999999",
        ]
        var loaded = 0, refused = 0
        for _ in 0..<400 {
            var text = Array(seeds[Int(random.next() % UInt64(seeds.count))])
            for _ in 0..<(1 + random.next() % 4) {
                let at = text.isEmpty ? 0 : Int(random.next() % UInt64(text.count))
                switch random.next() % 3 {
                case 0: text.insert(contentsOf: fragments[Int(random.next() % UInt64(fragments.count))], at: at)
                case 1: if !text.isEmpty { text.removeSubrange(at..<min(text.count, at + 1 + Int(random.next() % 8))) }
                default:
                    if !text.isEmpty { text[at] = fragments[Int(random.next() % UInt64(fragments.count))].first ?? " " }
                }
            }
            do {
                let scenario = try PipelineScenario.parse(String(text), file: "fuzz.yaml")
                #expect(throws: Never.self) { try scenario.pipeline.validate() }
                loaded += 1
            } catch {
                #expect(error.file == "fuzz.yaml" && !error.problem.isEmpty, "\(error)")
                refused += 1
            }
        }
        #expect(loaded > 0 && refused > 0, "the mutations reach both outcomes: \(loaded) loaded, \(refused) refused")
    }
}

/// A small deterministic generator (SplitMix64): the same documents on every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
