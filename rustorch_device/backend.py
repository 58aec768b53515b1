"""`torch.compile(model, backend="rust_backend")` (alias "rustorch"): Inductor over rustorch.

rustorch memory is host memory, so Inductor's CPU C++ code generator can write fused loops that
read and write rustorch tensors directly. This module registers rustorch with Inductor as a
device that uses that generator (scheduling, wrapper code, device interface, no-op stream and
guard overrides); what Inductor does not fuse (convolutions, matmuls with `out=`) is left to
rustorch's own aten kernels. Dynamo finds the backend by name through the `torch_dynamo_backends`
entry-point group (pyproject.toml), so no import is needed.

Where Inductor assumes an unknown device is a GPU, or where its loops were measured slower
than rustorch's aten kernels, per-compile config patches (CONFIG_PATCHES) and user lowerings
(EXTERN_ON_RUSTORCH) steer it; docs/compile.md lists each with the failure or timing behind it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DEVICE = "rustorch"
CONFIG_PATCHES: dict[str, Any] = {
    # Inductor asks `cuda_backend` for any device but CPU/XPU/MPS/TPU; "triton" broke dropout's
    # random kernels ("expected index.dtype is not None").
    "cuda_backend": "cpp",
    # That pass takes rustorch nodes for GPU nodes ("can't multiply sequence by non-int").
    "loop_reindexing_after_fusion": False,
    # Inductor would turn conv inputs channels-last and expect channels-last results back;
    # rustorch's convolutions return contiguous outputs (the eval graph failed its stride
    # asserts), and the C++ loops gain nothing from the layout change.
    "layout_optimization": False,
    # Measured: the generated per-element Philox loop made dropout's forward kernel ~2x slower
    # than aten's bernoulli_; the fallback is also bit-identical to eager dropout.
    "fallback_random": True,
}

# Ops that stay aten calls on rustorch instead of generated loops. Measured on the MNIST CNN:
# Inductor's scalar max-pool-with-indices loops took 110-140 ms (forward) and 40-50 ms
# (backward) per step where the aten kernels took ~16 and ~8 ms.
EXTERN_ON_RUSTORCH = ("max_pool2d_with_indices", "max_pool2d_with_indices_backward")

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
_lock = threading.Lock()
_registered = False


@dataclass
class CompileStats:
    """What the backend did in this process (reported by backend_check and the benchmarks)."""

    graphs: int = 0  # FX graphs handed to the backend by dynamo
    fx_nodes: int = 0  # call nodes in those graphs
    rustorch_graphs: int = 0  # graphs whose inputs live on rustorch
    ops: dict[str, int] = field(default_factory=dict)  # call_function targets seen

    def as_dict(self) -> dict[str, Any]:
        return {"graphs": self.graphs, "fx_nodes": self.fx_nodes,
                "rustorch_graphs": self.rustorch_graphs, "ops": dict(self.ops)}


STATS = CompileStats()


def _make_wrapper_codegen() -> type:
    from torch._inductor.codegen.wrapper import PythonWrapperCodegen, SubgraphPythonWrapperCodegen

    class RustorchWrapperCodegen(PythonWrapperCodegen):
        """Python wrapper that launches the generated C++ kernels on rustorch tensors."""

        @staticmethod
        def create(is_subgraph, subgraph_name, parent_wrapper, partition_signatures=None):
            if is_subgraph:
                return SubgraphPythonWrapperCodegen(
                    subgraph_name, parent_wrapper, partition_signatures
                )
            return RustorchWrapperCodegen()

        def _generate_kernel_call_helper(self, kernel_name, call_args, *, device=None,
                                         triton=True, **kwargs):
            # The kernels are host C++ taking raw pointers: launch them as CPU kernels are.
            if device is not None and device.type == DEVICE and not triton:
                device = torch.device("cpu")
            return super()._generate_kernel_call_helper(
                kernel_name, call_args, device=device, triton=triton, **kwargs
            )

    return RustorchWrapperCodegen


def _make_device_interface() -> type:
    from torch._dynamo.device_interface import CpuInterface

    class RustorchInterface(CpuInterface):
        """Dynamo/Inductor view of the device: host-like, one stream, synchronous."""

        @staticmethod
        def is_available() -> bool:
            return torch.accelerator.is_available() and (
                torch.accelerator.current_accelerator().type == DEVICE
            )

        @staticmethod
        def device_count() -> int:
            return torch.accelerator.device_count()

        @staticmethod
        def current_device() -> int:
            return torch.accelerator.current_device_index()

        @staticmethod
        def set_device(device: Any) -> None:
            torch.accelerator.set_device_index(torch.device(device).index or 0)

        @staticmethod
        def is_triton_capable(device: Any = None) -> bool:
            return False

    return RustorchInterface


def register_inductor_device() -> None:
    """Teaches Inductor to generate code for rustorch tensors (idempotent, thread-safe)."""
    global _registered
    with _lock:
        if _registered:
            return
        from torch._dynamo.device_interface import register_interface_for_device
        from torch._inductor.codegen.common import (
            register_backend_for_device,
            register_device_op_overrides,
        )
        from torch._inductor.codegen.cpp import CppScheduling
        from torch._inductor.codegen.cpu_device_op_overrides import CpuDeviceOpOverrides

        register_device_op_overrides(DEVICE, CpuDeviceOpOverrides())
        register_backend_for_device(DEVICE, CppScheduling, _make_wrapper_codegen())
        register_interface_for_device(DEVICE, _make_device_interface())
        _keep_extern_on_rustorch()
        _answer_as_cpu_for_rustorch()
        _registered = True


def inductor_codegen(name: str) -> type:
    """What torch.rustorch hands Inductor for `Scheduling`, `PythonWrapperCodegen`,
    `CppWrapperCodegen` and `WrapperFxCodegen`.

    Inductor's `init_backend_registration()` (run by every compile, before any lowering) asks
    the PrivateUse1 device module for these names when the device has no scheduling yet; that is
    the moment plain `torch.compile(backend="inductor")` first needs rustorch registered, so the
    lookup registers it (idempotent) and nothing is imported before a compile."""
    register_inductor_device()
    from torch._inductor.codegen.common import (
        get_scheduling_for_device,
        get_wrapper_codegen_for_device,
    )

    if name == "Scheduling":
        return get_scheduling_for_device(DEVICE)
    if name == "PythonWrapperCodegen":
        return get_wrapper_codegen_for_device(DEVICE)
    if name == "CppWrapperCodegen":  # cpp_wrapper=True: the CPU C++ wrapper (host pointers)
        from torch._inductor.codegen.cpp_wrapper_cpu import CppWrapperCpu

        return CppWrapperCpu
    if name == "WrapperFxCodegen":
        from torch._inductor.codegen.wrapper_fxir import WrapperFxCodegen

        return WrapperFxCodegen
    raise AttributeError(name)


def _answer_as_cpu_for_rustorch() -> None:
    """Inductor takes any device but cpu/mps/xpu/tpu for a GPU in three places; rustorch runs
    Inductor's CPU C++ code, so about rustorch they must answer as about the CPU. rust_backend
    covers two of them with CONFIG_PATCHES, but plain `backend="inductor"` compiles have no
    per-compile hook, so each place is wrapped; every wrapper changes only answers about
    rustorch graphs and calls the original otherwise (CPU and CUDA behaviour unchanged):

    - `get_current_backend` (bound by name in four modules): "triton" for rustorch broke
      dropout's random kernels ("expected index.dtype is not None") -> "cpp";
    - `BaseSchedulerNode.is_cpu`: GPU-only loop reindexing ran on rustorch nodes ("can't
      multiply sequence by non-int of type 'tuple'") -> rustorch nodes count as CPU nodes;
    - `GraphLowering.decide_layout_opt`: channels-last conv inputs with asserted channels-last
      results, which rustorch's convolutions do not return -> off for graphs on rustorch."""
    import torch._inductor.codegen.common as common
    import torch._inductor.graph as graph
    import torch._inductor.kernel.mm_common as mm_common
    import torch._inductor.scheduler as scheduler
    import torch._inductor.utils as utils

    original_backend = utils.get_current_backend
    if getattr(original_backend, "_rustorch_wrapped", False):
        return

    def get_current_backend(device_type: str | None = None) -> str:
        if not device_type:
            from torch._inductor.virtualized import V

            device_type = V.graph.get_current_device_or_throw().type
        return "cpp" if device_type == DEVICE else original_backend(device_type)

    get_current_backend._rustorch_wrapped = True  # type: ignore[attr-defined]
    for module in (utils, common, scheduler, mm_common):
        if getattr(module, "get_current_backend", None) is original_backend:
            module.get_current_backend = get_current_backend

    original_is_cpu = scheduler.BaseSchedulerNode.is_cpu

    def is_cpu(self: Any) -> bool:
        device = self.get_device()
        return (device is not None and device.type == DEVICE) or original_is_cpu(self)

    scheduler.BaseSchedulerNode.is_cpu = is_cpu  # type: ignore[method-assign]

    original_layout_opt = graph.GraphLowering.decide_layout_opt

    def decide_layout_opt(gm: torch.fx.GraphModule, *, is_inference: bool) -> bool:
        for node in gm.graph.nodes:
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor) and val.device.type == DEVICE:
                return False
        return original_layout_opt(gm, is_inference=is_inference)

    graph.GraphLowering.decide_layout_opt = staticmethod(decide_layout_opt)  # type: ignore[method-assign]


def _keep_extern_on_rustorch() -> None:
    """User lowerings (Inductor tries them first; None means "use the built-in one") that turn
    EXTERN_ON_RUSTORCH ops on rustorch inputs into extern aten calls; other devices unchanged."""
    from torch._inductor.lowering import fallback_handler, user_lowerings

    for name in EXTERN_ON_RUSTORCH:
        op = getattr(torch.ops.aten, name).default
        extern = fallback_handler(op, add_to_fallback_set=False)

        def lowering(*args, _extern=extern, **kwargs):
            device = args[0].get_device() if hasattr(args[0], "get_device") else None
            if device is not None and device.type == DEVICE:
                return _extern(*args, **kwargs)
            return None

        user_lowerings[op] = lowering


def decompositions() -> dict[Any, Callable[..., Any]]:
    """Inductor's decomposition table minus the ops kept as aten calls on rustorch (a
    decomposition would bypass the lowering wrapped above)."""
    from torch._inductor.decomposition import select_decomp_table

    keep = {getattr(torch.ops.aten, n).default for n in EXTERN_ON_RUSTORCH}
    return {op: fn for op, fn in select_decomp_table().items() if op not in keep}


def _record(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> None:
    STATS.graphs += 1
    for node in gm.graph.nodes:
        if node.op in ("call_function", "call_method", "call_module"):
            STATS.fx_nodes += 1
            name = getattr(node.target, "__name__", str(node.target))
            STATS.ops[name] = STATS.ops.get(name, 0) + 1
    if any(isinstance(t, torch.Tensor) and t.device.type == DEVICE for t in example_inputs):
        STATS.rustorch_graphs += 1


def rust_backend(
    gm: torch.fx.GraphModule, example_inputs: Sequence[Any], **config_patches: Any
) -> Callable[..., Any]:
    """The dynamo backend: Inductor (AOTAutograd, decompositions, min-cut partitioning, fused
    C++ loops) with rustorch registered as a device. Graphs on CPU tensors compile as Inductor
    would compile them."""
    from torch._inductor import config as inductor_config
    from torch._inductor.compile_fx import compile_fx, compile_fx_inner

    register_inductor_device()
    _record(gm, example_inputs)
    patches = {**CONFIG_PATCHES, **config_patches}
    with inductor_config.patch(patches):  # the table depends on fallback_random
        table = decompositions()

    def inner_compile(*args: Any, **kwargs: Any) -> Any:  # forward and (lazy) backward
        with _cache_tag():
            return compile_fx_inner(*args, **kwargs)

    with _cache_tag():
        return compile_fx(gm, list(example_inputs), inner_compile=inner_compile,
                          config_patches=patches, decompositions=table)


def _cache_tag():
    """Inductor's FX/AOT caches do not hash our decomposition table and lowerings: tag the
    keys with this module's digest so that code compiled under other rules is never reused."""
    import torch.compiler.config as compiler_config

    tag = f"rustorch-backend-{_SOURCE_DIGEST}"
    current = compiler_config.cache_key_tag
    if tag in current.split("|"):  # already inside a tagged compile
        return contextlib.nullcontext()
    return compiler_config.patch(cache_key_tag=f"{current}|{tag}" if current else tag)


def graph_breaks() -> int:
    """Graph breaks dynamo counted in this process (all backends)."""
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


def graph_break_reasons() -> dict[str, int]:
    """First line of each graph-break reason -> count (e.g. the optimizers' own deliberate
    break before their lazy state initialisation)."""
    from torch._dynamo.utils import counters

    reasons: dict[str, int] = {}
    for reason, n in counters["graph_break"].items():
        key = str(reason).strip().splitlines()[0] if str(reason).strip() else "?"
        reasons[key] = reasons.get(key, 0) + n
    return reasons


def stats() -> dict[str, Any]:
    from torch._inductor import metrics

    return {**STATS.as_dict(), "graph_breaks": graph_breaks(),
            "graph_break_reasons": graph_break_reasons(),
            "generated_kernels": metrics.generated_kernel_count}
