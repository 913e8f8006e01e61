import DmaBufKit
import DmaBufSimulation
import Testing

/// Runs one bad-input row: it must fail with the row's errno and leave nothing behind.
func check(_ row: BadInput, on kernel: any Kernel) {
    expectNoLeaks(kernel) {
        let fixture = BadInputFixture(kernel: kernel)
        defer { fixture.closeAll() }
        do throws(KernelError) {
            if let fd = try row.run(fixture) {
                try? kernel.close(fd)
                Issue.record("\(row.name): succeeded, expected \(row.expected.name) (\(row.citation))")
            } else {
                Issue.record("\(row.name): succeeded, expected \(row.expected.name) (\(row.citation))")
            }
        } catch {
            #expect(
                error.errno == row.expected, "\(row.name): \(error) — expected \(row.expected.name) per \(row.citation)"
            )
        }
    }
}

@Suite("Bad inputs on the simulated kernel")
struct SimulatedBadInputTests {
    @Test(arguments: SimulatedKernel.Version.allCases, BadInputTable.rows)
    func row(_ version: SimulatedKernel.Version, _ row: BadInput) {
        check(row, on: SimulatedKernel(version: version))
    }
}

extension DeviceTests {
    @Suite("Bad inputs on the real kernel")
    struct BadInputs {
        @Test(arguments: BadInputTable.rows)
        func row(_ row: BadInput) {
            check(row, on: LinuxKernel())
        }
    }
}
