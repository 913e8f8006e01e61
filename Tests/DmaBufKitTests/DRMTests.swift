import DmaBufKit
import DmaBufSimulation
import Testing

@Suite("DRM/KMS on the simulated kernel")
struct SimulatedDRMTests {
    @Test(arguments: SimulatedKernel.Version.allCases, DRMCases.shared)
    func shared(_ version: SimulatedKernel.Version, _ kernelCase: KernelCase) throws {
        try kernelCase.run(on: SimulatedKernel(version: version))
    }
    @Test(arguments: SimulatedKernel.Version.allCases, DRMBadInputTable.rows)
    func badInput(_ version: SimulatedKernel.Version, _ row: DRMBadInput) throws {
        try DRMBadInputTable.check(row, on: SimulatedKernel(version: version))
    }
}

extension DeviceTests {
    @Suite("DRM/KMS on the real kernel", .enabled(if: DRMDevices.available || Devices.required, DRMDevices.skipReason))
    struct DRMOnDevices {
        @Test func crc() throws { try DRMCases.crcsFollowWhatIsShown(LinuxKernel()) }
        @Test(arguments: DRMCases.shared)
        func shared(_ kernelCase: KernelCase) throws { try kernelCase.run(on: LinuxKernel()) }
        @Test(arguments: DRMBadInputTable.rows)
        func badInput(_ row: DRMBadInput) throws { try DRMBadInputTable.check(row, on: LinuxKernel()) }
    }
}

/// The DRM devices the DRM device tests need: vkms (with writeback) and vgem.
enum DRMDevices {
    static let drivers = (try? DRMDevice.drivers(kernel: LinuxKernel()).map(\.driver)) ?? []
    static var available: Bool { drivers.contains("vkms") && drivers.contains("vgem") }
    static var skipReason: Comment {
        "needs DRM devices driven by vkms and vgem (found: \(drivers.isEmpty ? "none" : drivers.joined(separator: ", "))); see README.md, VM test rig"
    }
}
