import DmaBufKit
import DmaBufSimulation
import Testing

@Suite("DRM/KMS on the simulated kernel")
struct SimulatedDRMTests {
    @Test func inventory() throws { try DRMCases.inventoryListsPlanesFormatsAndModifiers(SimulatedKernel()) }
    @Test func offsetsAndFlips() throws { try DRMCases.offsetsPitchesAndFlips(SimulatedKernel()) }
    @Test func devices() throws { try DRMCases.devicesAreFoundByDriverName(SimulatedKernel()) }
    @Test func prime() throws { try DRMCases.primeHandlesAreSharedAndReleasedOnce(SimulatedKernel()) }
    @Test func lifecycle() throws { try DRMCases.scanoutOutlivesItsExporterAndRMFBTurnsThePlaneOff(SimulatedKernel()) }
    @Test(arguments: DRMBadInputTable.rows)
    func badInput(_ row: DRMBadInput) throws { try DRMBadInputTable.check(row, on: SimulatedKernel()) }

    @Test(arguments: DRMCases.Exporter.allCases)
    func writeback(_ exporter: DRMCases.Exporter) throws {
        try DRMCases.writebackMatchesTheScannedOutBuffer(SimulatedKernel(), from: exporter)
    }
}

extension DeviceTests {
@Suite("DRM/KMS on the real kernel", .enabled(if: DRMDevices.available || Devices.required, DRMDevices.skipReason))
struct DRMOnDevices {
    @Test func crc() throws { try DRMCases.crcsFollowWhatIsShown(LinuxKernel()) }
    @Test func inventory() throws { try DRMCases.inventoryListsPlanesFormatsAndModifiers(LinuxKernel()) }
    @Test func offsetsAndFlips() throws { try DRMCases.offsetsPitchesAndFlips(LinuxKernel()) }
    @Test func devices() throws { try DRMCases.devicesAreFoundByDriverName(LinuxKernel()) }
    @Test func prime() throws { try DRMCases.primeHandlesAreSharedAndReleasedOnce(LinuxKernel()) }
    @Test func lifecycle() throws { try DRMCases.scanoutOutlivesItsExporterAndRMFBTurnsThePlaneOff(LinuxKernel()) }
    @Test(arguments: DRMBadInputTable.rows)
    func badInput(_ row: DRMBadInput) throws { try DRMBadInputTable.check(row, on: LinuxKernel()) }

    @Test(arguments: DRMCases.Exporter.allCases)
    func writeback(_ exporter: DRMCases.Exporter) throws {
        try DRMCases.writebackMatchesTheScannedOutBuffer(LinuxKernel(), from: exporter)
    }
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
