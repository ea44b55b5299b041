import Appliances
import Foundation

/// The appliances that ship the two research workloads (workloads/): the CT segmentation, which asks for a GPU,
/// and the bone-density analysis, which runs on CPUs (and segments on the CPU itself when it has no label map).
/// Both: Debian's python3 from `scratch`, the workloads' pinned Python stack as a pip layer, the workloads tree at
/// /opt/workloads, the ChRIS-style contract `run INPUT_DIR OUTPUT_DIR` with /data and /results as defaults.
public enum WorkloadImages {
    public enum Kind: String, CaseIterable, Sendable {
        case ctSegmentation = "ct-segmentation"
        case boneDensity = "bone-density"

        var needsGPU: Bool { self == .ctSegmentation }
    }

    /// The Python stack both images carry (workloads/requirements.txt without the test tools). torch 2.13.0: the
    /// CPU image takes the +cpu build; the GPU image the default Linux build, which brings CUDA (on a machine whose
    /// pip finds a local +cpu wheel first, give it `--gpu-requirements` naming the CUDA wheel).
    static let python = ["numpy==2.4.6", "nibabel==5.4.2", "pydicom==3.0.2", "scipy==1.17.1", "monai==1.6.1"]

    /// The spec of `kind`, reading the workloads from `workloads` (the repository's workloads/ directory);
    /// requirement files are written into `work`.
    public static func spec(
        _ kind: Kind, workloads: String, work: String, compression: ApplianceSpec.Compression = .gzip,
        gpuRequirements: String? = nil
    ) throws -> ApplianceSpec {
        guard FileManager.default.fileExists(atPath: "\(workloads)/\(kind.rawValue)/run") else {
            throw ApplianceBuilder.BuildError(description: "\(workloads): no \(kind.rawValue)/run (the workloads tree)")
        }
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let requirements = "\(work)/\(kind.rawValue)-requirements.txt"
        let torch = kind.needsGPU ? (gpuRequirements.map { "-r \($0)" } ?? "torch==2.13.0") : "torch==2.13.0+cpu"
        try (python + [torch]).joined(separator: "\n").appending("\n")
            .write(toFile: requirements, atomically: true, encoding: .utf8)
        var spec = ApplianceSpec(name: kind.rawValue, directory: workloads)
        spec.compression = compression
        spec.layers = [
            // coreutils: the workloads start with `#!/usr/bin/env python3`, and nothing python3 needs brings env;
            // libstdc++ and libgomp: what manylinux wheels (numpy, scipy, torch) expect of the system.
            .init(source: .debian(["python3", "coreutils", "libstdc++6", "libgomp1"]), to: "/"),
            .init(source: .pip(requirements: requirements), to: "/usr/lib/python3/dist-packages"),
            .init(source: .directory(workloads), to: "/opt/workloads"),
        ]
        spec.entrypoint = ["/opt/workloads/\(kind.rawValue)/run"]
        spec.cmd = ["/data", "/results"]
        spec.workdir = "/opt/workloads"
        spec.env = ["PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"]
        spec.labels = ["org.opencontainers.image.title": kind.rawValue]
        spec.io = .init(
            inputs: ["/data": "NIfTI volumes (the staged volume's layout or flat)"],
            outputs: ["/results": "summary.json and report.html"])
        if kind.needsGPU {
            spec.env["NVIDIA_VISIBLE_DEVICES"] = "all"
            spec.env["NVIDIA_DRIVER_CAPABILITIES"] = "compute,utility"
            spec.env["CUDA_MODULE_LOADING"] = "LAZY"
            spec.resources = .init(cpus: 4, memoryMB: 16384, gpus: 1)
        } else {
            spec.resources = .init(cpus: 2, memoryMB: 4096, gpus: 0)
        }
        // The one timestamp in the images: the workloads' own newest change is not knowable here; fixed instead.
        spec.created = UInt64(ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"] ?? "") ?? 1_767_225_600
        return spec
    }

    /// Builds the images of `kinds` into `output/NAME` (OCI layouts tagged `latest`).
    public static func build(
        _ kinds: [Kind], workloads: String, output: String, compression: ApplianceSpec.Compression = .gzip,
        gpuRequirements: String? = nil, progress: (String) -> Void = { _ in }
    ) throws -> [(Kind, BuildResult)] {
        let work = output + "/.requirements"
        defer { try? FileManager.default.removeItem(atPath: work) }
        return try kinds.map { kind in
            progress("building \(kind.rawValue)")
            let spec = try spec(
                kind, workloads: workloads, work: work, compression: compression, gpuRequirements: gpuRequirements)
            return (kind, try ApplianceBuilder.build(spec, output: "\(output)/\(kind.rawValue)"))
        }
    }
}
