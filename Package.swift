// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "deployctl",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "deployctl", targets: ["deployctl"]),
        .library(name: "TOSCA", targets: ["TOSCA"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .target(
            name: "TOSCA",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: strict
        ),
        .systemLibrary(
            name: "CLibSSH2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        .target(
            name: "Providers",
            dependencies: [
                "CLibSSH2",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Orchestrator",
            dependencies: [
                "TOSCA",
                "Providers",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .systemLibrary(
            name: "CArchiveSupport",
            providers: [.apt(["zlib1g-dev", "libssl-dev", "libzstd-dev", "libdeflate-dev"])]
        ),
        // Appliances: reproducible OCI images from a spec. Depends on nothing of ours.
        .target(
            name: "Appliances",
            dependencies: [
                "CArchiveSupport",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // Data staging: DICOM Part 10, PS3.15 anonymisation, DICOMweb, NIfTI conversion, sealed volumes.
        // Depends on nothing of ours.
        .target(
            name: "Staging",
            dependencies: [
                "CArchiveSupport",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // The two workload appliances (segmentation on GPU, bone density on CPU), defined with the Appliances module.
        .target(
            name: "WorkloadImages",
            dependencies: ["Appliances"],
            swiftSettings: strict
        ),
        // Elastic worker pools: scaling policies, the simulator and its traces. Depends on nothing of ours.
        .target(
            name: "Elastic",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "deployctl",
            dependencies: [
                "TOSCA",
                "Providers",
                "Orchestrator",
                "Elastic",
                "Appliances",
                "Staging",
                "WorkloadImages",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Real test hosts (sshd in network namespaces) shared by the test targets.
        .target(
            name: "TestBeds",
            path: "Tests/TestBeds",
            swiftSettings: strict
        ),
        .testTarget(
            name: "ProvidersTests",
            dependencies: ["Providers", "TestBeds"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrchestratorTests",
            dependencies: ["Orchestrator", "Providers", "TOSCA", "TestBeds"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AppliancesTests",
            dependencies: ["Appliances", "TestBeds"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WorkloadImagesTests",
            dependencies: ["WorkloadImages", "Appliances", "TestBeds"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StagingTests",
            dependencies: ["Staging", "TestBeds"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ElasticTests",
            dependencies: ["Elastic"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TOSCATests",
            dependencies: ["TOSCA"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
