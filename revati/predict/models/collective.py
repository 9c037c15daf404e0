"""Collectives: alpha-beta per NCCL algorithm (ring, tree) and topology.

For p ranks and S bytes per rank, an algorithm takes `steps` latency hops and moves `wire`
bytes per rank:

    ring  allreduce: steps 2(p-1),     wire 2(p-1)/p·S      tree allreduce: steps 2·log2 p, wire 2·S
    allgather / reducescatter (ring): steps p-1, wire (p-1)/p·S;  sendrecv / broadcast: 1 (log2 p), S

    t = alpha + steps·hop + wire / bw

NCCL picks the faster algorithm per call, so the prediction is the minimum over algorithms.
Parameters (alpha ns, hop ns, bw bytes/ns) are fitted per topology (e.g. "dgx/1node": NVSwitch
in one node; "dgx/2pernode": two GPUs on each of several nodes) on measured collective timings;
a profile names the topology to predict for. A record may name its own topology (`--nodes`: a
collective whose members span nodes is "dgx/<k>pernode"); one the profile has not fitted is
predicted from the catalog device's network bandwidth (`network_gbs`), which every ring or tree
across nodes crosses, with the latency of a network hop.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.models.base import DurationModel, Params

ALGORITHMS = ("ring", "tree")
DEFAULT_TOPOLOGY = "dgx/1node"
NETWORK_HOP_NS = 5000.0  # one step of a ring or tree between nodes (NIC, switch, NIC)


def topology_of(members_per_node: list[int]) -> str:
    """The topology name of a collective with these member counts on each node it spans."""
    if len(members_per_node) <= 1:
        return DEFAULT_TOPOLOGY
    return f"dgx/{max(members_per_node)}pernode"


def network_algorithms(device: DeviceSpec) -> dict[str, list[float]]:
    """Uncalibrated parameters across nodes: the network's bandwidth, a network hop's latency."""
    net = device.network_gbs or device.pcie_gbs  # bytes/ns one way
    return {
        "ring": [12000.0, NETWORK_HOP_NS, net * 0.8],
        "tree": [12000.0, NETWORK_HOP_NS * 1.5, net * 0.5],
    }


def steps_and_wire(algorithm: str, collective: np.ndarray, p: np.ndarray, size: np.ndarray):
    """(latency hops, bytes on the wire per rank) of each record under `algorithm`."""
    p = np.maximum(p, 2).astype(np.float64)
    s = size.astype(np.float64)
    log_p = np.ceil(np.log2(p))
    allreduce = np.isin(collective, ("allreduce", "all_reduce", ""))
    gather = np.isin(collective, ("allgather", "reducescatter", "all_gather", "reduce_scatter"))
    if algorithm == "ring":
        steps = np.where(allreduce, 2 * (p - 1), np.where(gather, p - 1, 1.0))
        wire = np.where(allreduce, 2 * (p - 1) / p * s, np.where(gather, (p - 1) / p * s, s))
    else:
        steps = np.where(allreduce, 2 * log_p, np.where(gather, p - 1, log_p))
        wire = np.where(allreduce, 2 * s, np.where(gather, (p - 1) / p * s, s))
    return steps, wire


class CollectiveModel(DurationModel):
    name = "collective"
    families = ("collective",)

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        link = device.nvlink_gbs / 2 or device.pcie_gbs  # bytes/ns one way
        alg = {"ring": [8000.0, 600.0, link * 0.8], "tree": [8000.0, 1500.0, link * 0.5]}
        return {"topology": DEFAULT_TOPOLOGY, "topologies": {DEFAULT_TOPOLOGY: alg}}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        return (families == "collective") & (batch.bytes > 0)

    def predict(self, batch: OpBatch) -> np.ndarray:
        topologies = self.params["topologies"]
        default = topologies.get(self.params["topology"]) or next(iter(topologies.values()))
        if batch.n == 0 or not batch.topology.any():
            return predict_min(default, batch)
        out = np.empty(batch.n, dtype=np.float64)
        for topo in np.unique(batch.topology):
            sel = batch.topology == topo
            if not topo or topo == self.params["topology"]:
                alg = default
            elif topo in topologies:
                alg = topologies[topo]
            elif topo == DEFAULT_TOPOLOGY:
                alg = self.default_params(self.device)["topologies"][DEFAULT_TOPOLOGY]
            else:
                alg = network_algorithms(self.device)
            out[sel] = predict_min(alg, batch.take(sel))
        return out

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        keep = (batch.bytes > 0) & (measured_ns > 0)
        if keep.sum() < 6:
            return None
        groups = np.full(batch.n, DEFAULT_TOPOLOGY, dtype=object) if groups is None else groups
        params = cls.default_params(device)
        params["topologies"] = {}
        for topo in np.unique(groups[keep]):
            sel = keep & (groups == topo)
            if sel.sum() >= 6:
                params["topologies"][str(topo)] = fit_algorithms(batch.take(sel), measured_ns[sel])
        if DEFAULT_TOPOLOGY not in params["topologies"]:
            params["topology"] = next(iter(params["topologies"]), DEFAULT_TOPOLOGY)
        params["samples"] = int(keep.sum())
        return params


def predict_algorithm(coef: list[float], algorithm: str, batch: OpBatch) -> np.ndarray:
    steps, wire = steps_and_wire(algorithm, batch.collective, batch.world_size, batch.bytes)
    alpha, hop, bw = coef
    return alpha + steps * hop + wire / bw


def predict_min(alg: dict[str, list[float]], batch: OpBatch) -> np.ndarray:
    return np.min([predict_algorithm(alg[a], a, batch) for a in ALGORITHMS if a in alg], axis=0)


def fit_algorithms(batch: OpBatch, measured_ns: np.ndarray, rounds: int = 6) -> dict:
    """Alternate: assign each record to its faster algorithm, refit each by relative NNLS."""
    small = batch.bytes < np.median(batch.bytes)
    assign = np.where(small, "tree", "ring")
    alg: dict[str, list[float]] = {}
    for _ in range(rounds):
        for a in ALGORITHMS:
            sel = assign == a
            if sel.sum() >= 3:
                alg[a] = _fit_one(a, batch.take(sel), measured_ns[sel])
        preds = np.array([predict_algorithm(alg[a], a, batch) for a in alg])
        new = np.array(list(alg), dtype=object)[np.argmin(preds, axis=0)]
        if np.array_equal(new, assign):
            break
        assign = new
    return alg


def _fit_one(algorithm: str, batch: OpBatch, y: np.ndarray) -> list[float]:
    from scipy.optimize import nnls  # scipy only when fitting: keeps import fast

    steps, wire = steps_and_wire(algorithm, batch.collective, batch.world_size, batch.bytes)
    w = 1.0 / y
    coef, _ = nnls(np.column_stack([w, steps * w, wire * w]), np.ones_like(y))
    inv_bw = coef[2] if coef[2] > 1e-12 else 1e-6
    return [round(float(coef[0]), 3), round(float(coef[1]), 3), round(float(1.0 / inv_bw), 6)]
