import Foundation

extension QueueSnapshot {
    /// Reads HTCondor's queue and pool: `condor_q -json` (job ads) and `condor_status -json` (slot ads), each a JSON
    /// array of ClassAds, or nothing at all when there are none.
    ///
    /// Jobs: idle (JobStatus 1) is PENDING, running (2) RUNNING, suspended (7) SUSPENDED; removed, completed, held
    /// (it waits for a person, not a node) and transferring output are left out. The id is
    /// `ClusterId * 100_000 + ProcId`, the name the last path component of `Cmd`, the node the machine of
    /// `RemoteHost`. What a job needs is RequestCpus, RequestMemory (MB) and RequestGPUs; one that is an expression
    /// (condor_q prints it as `"\/Expr(…)\/"`) counts as 1 CPU, 0 MB and 0 GPUs.
    ///
    /// Nodes: the slots of each `Machine`. A partitionable slot offers TotalSlotCpus/Memory/GPUs and has its own
    /// Cpus/Memory/GPUs free (the rest is in its dynamic slots, which are not counted again); static slots add up,
    /// and are allocated while Claimed. A machine with a slot Drained or Retiring has the flag DRAIN.
    public static func htcondor(condorQ: Data, condorStatus: Data) throws(ParseError) -> QueueSnapshot {
        var jobs: [Job] = []
        for ad in try classAds(condorQ, "condor_q -json", myType: "Job") {
            guard let cluster = int(ad["ClusterId"]), let proc = int(ad["ProcId"]) else {
                throw ParseError(message: "condor_q -json: a job without ClusterId or ProcId")
            }
            let state: String
            switch int(ad["JobStatus"]) {
            case 1: state = "PENDING"
            case 2: state = "RUNNING"
            case 7: state = "SUSPENDED"
            default: continue
            }
            var nodes: [String] = []
            if state != "PENDING", let host = ad["RemoteHost"] as? String, let machine = host.split(separator: "@").last
            {
                nodes = [String(machine)]
            }
            let command = (ad["Cmd"] as? String ?? "").split(separator: "/").last.map(String.init) ?? ""
            jobs.append(
                Job(
                    id: cluster * 100_000 + proc, name: command, state: state, reason: "",
                    submit: Double(int(ad["QDate"]) ?? 0), nodeCount: 1,
                    perNode: Resources(
                        cpus: int(ad["RequestCpus"]) ?? 1, memoryMB: int(ad["RequestMemory"]) ?? 0,
                        gpus: int(ad["RequestGPUs"]) ?? 0),
                    nodes: nodes))
        }

        var nodes: [Node] = []
        var position: [String: Int] = [:]
        for ad in try classAds(condorStatus, "condor_status -json", myType: "Machine") {
            guard let name = ad["Machine"] as? String, !name.isEmpty else {
                throw ParseError(message: "condor_status -json: a slot without Machine")
            }
            let index = position[name] ?? nodes.count
            if index == nodes.count {
                position[name] = index
                nodes.append(
                    Node(name: name, address: name, state: "", flags: [], capacity: .zero, allocated: .zero))
            }
            if ad["State"] as? String == "Drained" || ad["Activity"] as? String == "Retiring",
                !nodes[index].flags.contains("DRAIN")
            {
                nodes[index].flags.append("DRAIN")
            }
            let slot = Resources(
                cpus: int(ad["Cpus"]) ?? 0, memoryMB: int(ad["Memory"]) ?? 0, gpus: int(ad["GPUs"]) ?? 0)
            switch ad["SlotType"] as? String ?? "Static" {
            case "Partitionable":
                let total = Resources(
                    cpus: int(ad["TotalSlotCpus"]) ?? slot.cpus, memoryMB: int(ad["TotalSlotMemory"]) ?? slot.memoryMB,
                    gpus: int(ad["TotalSlotGPUs"]) ?? slot.gpus)
                nodes[index].capacity = nodes[index].capacity + total
                nodes[index].allocated = nodes[index].allocated + (total - slot)
            case "Dynamic":
                break  // in its partitionable slot's numbers already
            default:
                nodes[index].capacity = nodes[index].capacity + slot
                if ad["State"] as? String == "Claimed" { nodes[index].allocated = nodes[index].allocated + slot }
            }
        }
        for index in nodes.indices {
            nodes[index].state = usage(capacity: nodes[index].capacity, allocated: nodes[index].allocated)
        }
        return QueueSnapshot(jobs: jobs, nodes: nodes)
    }

    /// The ClassAds of a `-json` listing: a JSON array of objects; empty output is no ads.
    static func classAds(_ data: Data, _ what: String, myType: String) throws(ParseError) -> [[String: Any]] {
        if String(decoding: data, as: UTF8.self).allSatisfy(\.isWhitespace) { return [] }
        guard let object = try? JSONSerialization.jsonObject(with: data) else {
            throw ParseError(message: "\(what): not JSON")
        }
        guard let ads = object as? [[String: Any]] else {
            throw ParseError(message: "\(what): not a JSON array of ClassAds")
        }
        if let other = ads.lazy.compactMap({ $0["MyType"] as? String }).first(where: { $0 != myType }) {
            throw ParseError(message: "\(what): an ad of MyType \(other), not \(myType)")
        }
        return ads
    }

    /// idle when nothing is allocated, allocated when no CPU is free (as sinfo counts it), else mixed.
    static func usage(capacity: Resources, allocated: Resources) -> String {
        if allocated.cpus <= 0, allocated.memoryMB <= 0, allocated.gpus <= 0 { return "idle" }
        return capacity.cpus - allocated.cpus <= 0 ? "allocated" : "mixed"
    }
}
