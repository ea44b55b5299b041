import Appliances
import Foundation
import TestBeds
import Testing

@testable import WorkloadImages

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite("The workload images' definitions")
struct WorkloadImageSpecTests {
    @Test("the GPU image asks for a GPU and sets the CUDA environment; the CPU image asks for none")
    func definitions() throws {
        let work = NSTemporaryDirectory() + "workload-specs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let gpu = try WorkloadImages.spec(.ctSegmentation, workloads: repository + "/workloads", work: work)
        let cpu = try WorkloadImages.spec(.boneDensity, workloads: repository + "/workloads", work: work)
        #expect(gpu.resources.gpus == 1 && gpu.env["NVIDIA_VISIBLE_DEVICES"] == "all")
        #expect(cpu.resources.gpus == 0 && cpu.env["NVIDIA_VISIBLE_DEVICES"] == nil)
        #expect(gpu.entrypoint == ["/opt/workloads/ct-segmentation/run"])
        #expect(cpu.entrypoint == ["/opt/workloads/bone-density/run"] && cpu.cmd == ["/data", "/results"])
        let requirements = try String(contentsOfFile: work + "/bone-density-requirements.txt", encoding: .utf8)
        #expect(requirements.contains("torch==2.13.0+cpu") && requirements.contains("monai==1.6.1"))
        #expect(throws: ApplianceBuilder.BuildError.self) {
            try WorkloadImages.spec(.boneDensity, workloads: work, work: work)
        }
    }
}

@Suite(
    "The bone-density image, built and run", .serialized,
    .enabled(
        if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/umoci")
            && (try? runProgram("/usr/bin/env", ["python3", "-c", "import nibabel, numpy"]).status) == 0,
        "needs root (chroot), umoci, apt, pip (`make deps`)"))
struct WorkloadImageBuildTests {
    @Test("built from scratch (Debian python3, the pinned stack, the workloads), it measures a phantom in a chroot")
    func boneDensityImage() throws {
        let scratch = NSTemporaryDirectory() + "workload-image-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let built = try WorkloadImages.build(
            [.boneDensity], workloads: repository + "/workloads", output: scratch + "/images")
        #expect(built.count == 1 && built[0].1.layers.count == 3)
        let unpack = try runProgram(
            "/usr/bin/umoci", ["unpack", "--image", scratch + "/images/bone-density:latest", scratch + "/bundle"])
        #expect(unpack.status == 0, "\(unpack.output)")
        let rootfs = scratch + "/bundle/rootfs"
        // A phantom with its true label map, written by the workloads' own generator on this machine.
        let phantom = try runProgram(
            "/usr/bin/env",
            ["python3", repository + "/workloads/common/phantom.py", rootfs + "/data", "--seed", "5", "--hu", "140"])
        #expect(phantom.status == 0, "\(phantom.output)")
        let run = try runProgram(
            "/usr/sbin/chroot",
            [
                rootfs, "/usr/bin/env", "PYTHONUNBUFFERED=1", "/opt/workloads/bone-density/run", "--no-segmentation",
                "--labels", "/data", "/data", "/results",
            ])
        #expect(run.status == 0, "\(run.output)")
        let summary = try String(contentsOfFile: rootfs + "/results/summary.json", encoding: .utf8)
        #expect(summary.contains("l1_trabecular_hu"), "\(summary)")
        #expect(summary.contains("indeterminate"), "140 HU lies between the Pickhardt thresholds: \(summary)")
        #expect(FileManager.default.fileExists(atPath: rootfs + "/results/report.html"))
    }
}
