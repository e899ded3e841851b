"""Accelerators, nodes and clusters. Bandwidths are GB/s decimal, one direction, per GPU."""

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from planner.errors import InputError
from planner.spec.base import USD, _to_int, Name, NonNegFloat, PosFloat, PosInt, Strict

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "fp4"]


class Peaks(Strict):
    """Dense (no 2:4 sparsity) peak TFLOP/s per precision; None = not supported."""

    fp32: PosFloat | None = None
    tf32: PosFloat | None = None
    fp16: PosFloat | None = None
    bf16: PosFloat | None = None
    fp8: PosFloat | None = None
    fp4: PosFloat | None = None


class MatmulEfficiency(Strict):
    """Measured maximum achievable matmul throughput / dense peak (ml-engineering MAMF)."""

    bf16: PosFloat | None = Field(None, le=1.0)
    fp8: PosFloat | None = Field(None, le=1.0)


class GPUPrice(Strict):
    cloud_usd_per_gpu_hour: USD | None = None
    purchase_usd: USD | None = None
    date: str | None = None
    source: str | None = None


class GPU(Strict):
    name: Name
    vendor: str | None = None
    memory_gib: PosFloat
    hbm_tb_s: PosFloat
    tflops: Peaks
    matmul_efficiency: MatmulEfficiency = MatmulEfficiency()
    sustained_tensor_fraction: PosFloat | None = Field(
        None, le=1.0, description="tensor-core rate a long training run sustains under the board power limit / the "
        "burst rate (MAMF) of `matmul_efficiency`; None = not measured (the burst rate is used)")
    fp4_gemm_over_fp8: PosFloat | None = Field(
        None, description="measured best NVFP4 / best per-tensor FP8 GEMM rate on this GPU (one harness, same "
        "GPU); None = not measured (planner.estimate.compute_quant.FP4_GEMM_OVER_FP8_DEFAULT is used)")
    fp32_packed: bool = Field(
        False, description="the listed tflops.fp32 counts packed FP32 (two FP32 operations per lane and clock: AMD "
        "CDNA3 / CDNA4 V_PK_FMA_F32); vector work with no packed form (integer unpacking, conversions) runs at half "
        "of it (planner.serve.timing.dequant_s_per_weight)")
    power_w: PosFloat | None = None
    host_link: str | None = None
    compute_capability: PosFloat | None = Field(
        None, description="CUDA compute capability (NVIDIA), e.g. 9.0 Hopper, 10.0 Blackwell: decides whether "
        "Transformer Engine keeps transposed FP8 weights (not on 10.x, whose FP8 GEMMs take any layout)")
    sm_count: PosInt | None = Field(
        None, description="streaming multiprocessors of the shipped part (CUDA multiProcessorCount): what a "
        "collective's CTAs take a share of while it overlaps compute (planner.estimate.comm.nccl_sm_share); None "
        "= not in the sources")
    price: GPUPrice = GPUPrice()
    source: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _check_peaks(self):
        if self.tflops.fp8 is not None and self.tflops.bf16 is None:
            raise ValueError("tflops: fp8 is given without bf16; FP8 training runs attention and the other "
                             "non-matmul work in bf16 (planner/estimate/compute.py), so give tflops.bf16")
        return self

    def peak_tflops(self, precision: str) -> float | None:
        return getattr(self.tflops, precision, None)


class NodePrice(Strict):
    purchase_usd: USD | None = None
    cloud_usd_per_node_hour: USD | None = None
    date: str | None = None
    source: str | None = None


class Node(Strict):
    name: Name = "custom-node"
    gpu: GPU
    gpus_per_node: PosInt
    scaleup_domain: PosInt | None = Field(None, description="GPUs in one NVLink/xGMI domain; default gpus_per_node")
    scaleup_gb_s: PosFloat
    scaleup_efficiency: PosFloat | None = Field(None, le=1.0)
    scaleup_mesh_links: PosInt | None = Field(None, description="switchless full mesh (AMD xGMI UBB): direct links "
                                              "per GPU that share scaleup_gb_s; None = a switch (NVSwitch)")
    scaleout_gb_s: PosFloat | None = Field(None, description="None = not in the sources: single-node only")
    scaleout_efficiency: PosFloat | None = Field(None, le=1.0)
    nics_per_node: PosInt | None = None
    host_memory_gib: PosFloat | None = Field(None, description="None = unknown: no offload plans")
    host_link_gb_s: PosFloat | None = None
    cpu_cores: PosInt | None = None
    host_cpu: Literal["x86", "grace"] = Field(
        "x86", description="the host CPU that issues the GPU work: x86 (the servers the host costs of "
        "planner/estimate/host.py were measured on) or grace (NVIDIA Grace, Arm Neoverse V2: GH200 / GB200 / "
        "GB300), whose eager dispatch is slower (host.HOST_CPU_DISPATCH_FACTOR)")
    nvme_tb: NonNegFloat | None = None
    power_kw: PosFloat | None = Field(None, le=1e4)
    price: NodePrice = NodePrice()
    source: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.scaleup_domain is not None and self.scaleup_domain < self.gpus_per_node \
                and self.gpus_per_node % self.scaleup_domain:
            raise ValueError(f"gpus_per_node ({self.gpus_per_node}) is not a multiple of "
                             f"scaleup_domain ({self.scaleup_domain})")
        if self.scaleup_mesh_links is not None and self.scaleup_mesh_links > self.domain - 1:
            # comm.mesh_share: a group of k uses k - 1 of the links, which needs one link per peer
            raise ValueError(f"scaleup_mesh_links ({self.scaleup_mesh_links}) exceeds the peers in one scale-up "
                             f"domain ({self.domain} GPUs: at most {self.domain - 1} direct links per GPU)")
        return self

    @property
    def domain(self) -> int:
        return self.scaleup_domain or self.gpus_per_node

    @property
    def usd_per_gpu_hour(self) -> float | None:
        """Rental price per GPU-hour: the node's cloud price if given, else the GPU's."""
        if self.price.cloud_usd_per_node_hour is not None:
            return self.price.cloud_usd_per_node_hour / self.gpus_per_node
        return self.gpu.price.cloud_usd_per_gpu_hour


# At most this many node counts in one cluster (a range or a list): each count is a full search.
MAX_NODE_COUNTS = 256
# At most this many nodes in one count (the largest training clusters hold ~100k GPUs).
MAX_NODES = 100_000
NodeCount = Annotated[int, BeforeValidator(_to_int), Field(ge=1, le=MAX_NODES)]


class NodeRange(Strict):
    """`nodes: {min: 2, max: 16, step: 2}`: every count from min to max in steps."""

    min: NodeCount
    max: NodeCount
    step: NodeCount = 1

    @model_validator(mode="after")
    def _check(self):
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        if (self.max - self.min) // self.step >= MAX_NODE_COUNTS:
            raise ValueError(f"a node range may hold at most {MAX_NODE_COUNTS} counts")
        return self


class Cluster(Strict):
    node: Node
    nodes: NodeCount | list[NodeCount] | NodeRange = Field(1, description="a count, a list of counts or a range")

    @field_validator("nodes")
    @classmethod
    def _check_list(cls, nodes):
        if isinstance(nodes, list) and not nodes:
            raise ValueError("the list of node counts is empty")
        if isinstance(nodes, list) and len(nodes) > MAX_NODE_COUNTS:
            raise ValueError(f"a list may hold at most {MAX_NODE_COUNTS} node counts, as a range (got {len(nodes)})")
        return nodes

    @model_validator(mode="after")
    def _check(self):
        if max(self.node_counts) > 1 and self.node.scaleout_gb_s is None \
                and max(self.node_counts) * self.node.gpus_per_node > self.node.domain:
            raise ValueError(f"node '{self.node.name}' has no scale-out bandwidth in the catalog (no source); "
                             f"use one node, or an inline node with scaleout_gb_s")
        return self

    @property
    def node_counts(self) -> list[int]:
        if isinstance(self.nodes, int):
            return [self.nodes]
        if isinstance(self.nodes, list):
            return sorted(set(self.nodes))
        return list(range(self.nodes.min, self.nodes.max + 1, self.nodes.step))

    @property
    def gpus(self) -> int:
        counts = self.node_counts
        if len(counts) > 1:
            raise InputError(f"the cluster lists several node counts ({_counts_text(counts)}); this command "
                             "needs one (set cluster.nodes to a single count)", key="cluster.nodes")
        return self.node.gpus_per_node * counts[0]

    @property
    def nodes_text(self) -> str:
        """The node count(s) in words: `4`, `2, 4, 8` or `2-16 step 2`."""
        return _counts_text(self.node_counts)

    def with_nodes(self, n: int) -> "Cluster":
        """The cluster at n nodes; ValueError where the node cannot make one (no scale-out link: _check)."""
        return self.model_copy(update={"nodes": n})._check()


def _counts_text(counts: list[int]) -> str:
    return ", ".join(map(str, counts)) if len(counts) <= 6 else f"{len(counts)} counts from {counts[0]} to {counts[-1]}"
