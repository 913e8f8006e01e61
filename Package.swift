// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "DmaBufKit",
    products: [
        .library(name: "DmaBufKernel", targets: ["DmaBufKernel"]),
        .library(name: "DmaBufSimulation", targets: ["DmaBufSimulation"]),
        .library(name: "DmaBufKit", targets: ["DmaBufKit"]),
        .executable(name: "dmabuf-probe", targets: ["dmabuf-probe"]),
        .executable(name: "dmabuf-pipe", targets: ["dmabuf-pipe"]),
        .executable(name: "dmabuf-bench", targets: ["dmabuf-bench"]),
        .executable(name: "dmabuf", targets: ["dmabuf"]),
        .executable(name: "dmabuf-bench-floor", targets: ["dmabuf-bench-floor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C shim: one function per kernel operation, returning -errno.
        .target(name: "CDmaBuf", path: "Shims/CDmaBuf"),
        // System libraries used by the DRM and V4L2 layers.
        .systemLibrary(
            name: "CLibDRM", path: "Shims/CLibDRM", pkgConfig: "libdrm",
            providers: [.apt(["libdrm-dev"])]),
        .systemLibrary(
            name: "CLibV4L2", path: "Shims/CLibV4L2", pkgConfig: "libv4l2",
            providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(
            name: "CLibPNG", path: "Shims/CLibPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]),
        // The layers. DmaBufKernel: the Kernel interface (one protocol per subsystem), the real
        // kernel through the shim, errno and the kernel's value types. DmaBufSimulation: a
        // model of the same kernel, for tests and `--simulated`. DmaBufKit: the typed API,
        // probe and pipelines. Neither of the lower two can name a type above it.
        .target(
            name: "DmaBufKernel",
            dependencies: ["CDmaBuf", "CLibDRM"],
            path: "Sources/DmaBufKernel"),
        .target(
            name: "DmaBufSimulation",
            dependencies: ["DmaBufKernel"],
            path: "Sources/DmaBufSimulation"),
        .target(
            name: "DmaBufKit",
            dependencies: [
                "DmaBufKernel", "CDmaBuf", "CLibV4L2", "CLibPNG",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/DmaBufKit"),
        // The benchmarks' C reference: the same ioctl loops in plain C, and the runner that
        // sets both sides up and compares them.
        .target(name: "CBenchReference", dependencies: ["CLibDRM"], path: "Sources/CBenchReference"),
        // The C floor dmabuf-bench costs the capture → display pipeline against.
        .executableTarget(
            name: "dmabuf-bench-floor", dependencies: ["CBenchReference"], path: "Sources/dmabuf-bench-floor"),
        .target(
            name: "DmaBufBench",
            dependencies: [
                "DmaBufKit", "CBenchReference", "CDmaBuf", "CLibDRM", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/DmaBufBench"),
        // The three tools (argument parsing, then the library) and what they share: kernel
        // choice, logging, JSON, the exit-70 path.
        .target(
            name: "DmaBufCommandLine",
            dependencies: [
                "DmaBufKit", "DmaBufSimulation", "DmaBufBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/DmaBufCommandLine"),
        .executableTarget(name: "dmabuf-probe", dependencies: ["DmaBufCommandLine"], path: "Sources/dmabuf-probe"),
        .executableTarget(name: "dmabuf-pipe", dependencies: ["DmaBufCommandLine"], path: "Sources/dmabuf-pipe"),
        .executableTarget(name: "dmabuf-bench", dependencies: ["DmaBufCommandLine"], path: "Sources/dmabuf-bench"),
        // The three in one binary for boards (`make dist`): one copy of the Swift runtime.
        .executableTarget(name: "dmabuf", dependencies: ["DmaBufCommandLine"], path: "Sources/dmabuf"),
        .testTarget(
            name: "DmaBufKitTests",
            dependencies: [
                "DmaBufKit", "DmaBufSimulation", "DmaBufBench", "CDmaBuf", "CLibPNG",
                .product(name: "Logging", package: "swift-log"),
                // Built for the tests that run the tools as a user would (exit codes, signals, bad input).
                "dmabuf-probe", "dmabuf-pipe", "dmabuf-bench", "dmabuf",
            ],
            path: "Tests/DmaBufKitTests"),
    ],
    swiftLanguageModes: [.v6]
)
