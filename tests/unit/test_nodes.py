"""Several nodes (`--nodes M --devices N`): which topology a collective is predicted on, and the
collective model's timing within one node (NVLink/NVSwitch) and across nodes (the network)."""

from __future__ import annotations

import numpy as np
import pytest
from revati.recorder.writer import TraceWriter

from revati import shim
from revati.predict.batch import OpBatch
from revati.predict.catalog import get_device
from revati.predict.models.collective import CollectiveModel, topology_of
from tests.unit.test_barriers import Harness, rec, writer  # noqa: F401 (fixture)

H100 = get_device("h100-sxm")
ALLREDUCE = next(k for k, v in shim.COLL_KINDS.items() if v == "allreduce")


def _collectives(sizes: list[int], world: int, topologies: list[str]) -> OpBatch:
    n = len(sizes)
    return OpBatch.from_columns(
        n,
        kind=np.array(["collective"] * n, dtype=object),
        collective=np.array(["allreduce"] * n, dtype=object),
        world_size=np.full(n, world),
        bytes=np.array(sizes),
        topology=np.array(topologies, dtype=object),
    )


def test_topology_names_members_per_node() -> None:
    assert topology_of([8]) == "dgx/1node"
    assert topology_of([4, 4]) == "dgx/4pernode"
    assert topology_of([1, 1, 1, 1]) == "dgx/1pernode"


def test_across_nodes_runs_at_the_network_bandwidth() -> None:
    """Uncalibrated: within a node at NVLink speed; across nodes every ring crosses the network,
    so a large all-reduce takes its wire bytes over network_gbs (the ring's 80% of it)."""
    model = CollectiveModel(H100, None)
    size = 1 << 30
    intra, inter = model.predict(_collectives([size, size], 16, ["", "dgx/8pernode"]))
    assert intra == model.predict(_collectives([size], 16, ["dgx/1node"]))[0]
    wire = 2 * 15 / 16 * size
    assert inter == pytest.approx(wire / (H100.network_gbs * 0.8), rel=0.02)
    assert intra == pytest.approx(wire / (H100.nvlink_gbs / 2 * 0.8), rel=0.02)
    assert inter / intra == pytest.approx(H100.nvlink_gbs / 2 / H100.network_gbs, rel=0.03)
    small = model.predict(_collectives([1024, 1024], 16, ["", "dgx/8pernode"]))
    assert small[1] > small[0]  # a network hop's latency per step


def test_a_fitted_topology_is_used_as_fitted() -> None:
    params = CollectiveModel.default_params(H100)
    params["topologies"]["dgx/2pernode"] = {"ring": [1000.0, 0.0, 1.0]}  # 1 byte/ns
    model = CollectiveModel(H100, params)
    (t,) = model.predict(_collectives([1 << 20], 4, ["dgx/2pernode"]))
    assert t == pytest.approx(1000.0 + 2 * 3 / 4 * (1 << 20))


def _release(h: Harness, ranks: list[int], nranks: int, nbytes: int) -> dict:
    for i, rank in enumerate(ranks):
        h.arrive(rec(ALLREDUCE, rank, nranks, 1000 + i, 0x1000 + rank, nbytes))
    return h.rows("barriers")[-1]


@pytest.mark.parametrize("nodes", [1, 2])
def test_barriers_inside_one_node_keep_the_profile_topology(writer: TraceWriter, nodes) -> None:  # noqa: F811
    h = Harness(writer)
    h.book.place_nodes(nodes, 4, lambda pid: None)
    row = _release(h, [0, 1, 2, 3], 4, 64 << 20)
    assert "pernode" not in row["model"] and "1node" not in row["model"]


def test_a_barrier_across_nodes_takes_the_network(writer: TraceWriter) -> None:  # noqa: F811
    one, two = Harness(writer), Harness(writer)
    one.book.place_nodes(1, 4, lambda pid: None)
    two.book.place_nodes(2, 4, lambda pid: None)
    intra = _release(one, list(range(8)), 8, 64 << 20)
    inter = _release(two, list(range(8)), 8, 64 << 20)
    assert inter["model"].endswith("dgx/4pernode") and "pernode" not in intra["model"]
    assert inter["end_ns"] - inter["release_ns"] > 3 * (intra["end_ns"] - intra["release_ns"])


def test_ranks_from_the_environment_place_members(writer: TraceWriter) -> None:  # noqa: F811
    """A sub-communicator's ranks are not world ranks: a process's RANK says where it is."""
    h = Harness(writer)
    h.book.place_nodes(2, 2, lambda pid: 3)  # the harness's process has RANK=3: node 1
    row = _release(h, [0, 1], 2, 1 << 20)
    assert "pernode" not in row["model"]  # both members on node 1
    h.book.place_nodes(2, 2, lambda pid: None)  # ranks 0 and 1: node 0, also one node
    assert "pernode" not in _release(h, [0, 1], 2, 1 << 20)["model"]
    h.book.place_nodes(2, 1, lambda pid: None)  # one GPU per node: ranks 0, 1 on two nodes
    assert _release(h, [0, 1], 2, 1 << 20)["model"].endswith("dgx/1pernode")
