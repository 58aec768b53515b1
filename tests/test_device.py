"""Device registration: autoload, torch.accelerator, torch.rustorch, device indices."""

from __future__ import annotations

import pytest
import torch
from device_helpers import run_python, run_python_status


def test_autoload_in_plain_interpreter():
    # No import of rustorch_device: the torch.backends entry point registers the device.
    out = run_python(
        """
        import sys, torch
        x = torch.randn(3, device="rustorch")
        print(x.device, "rustorch_device" in sys.modules, torch.accelerator.current_accelerator())
        """
    )
    assert out.split() == ["rustorch:0", "True", "rustorch"]


def test_autoload_can_be_disabled():
    out = run_python(
        """
        import sys, torch
        print("rustorch_device" in sys.modules, torch._C._get_privateuse1_backend_name())
        import rustorch_device  # explicit import still registers
        print(torch.ones(1, device="rustorch").device)
        """,
        env={"TORCH_DEVICE_BACKEND_AUTOLOAD": "0"},
    )
    assert out.split() == ["False", "privateuseone", "rustorch:0"]


def test_pin_memory_thread_leaves_the_main_threads_intra_op_threads():
    # The pin-memory thread (started because rustorch is an accelerator) sets torch's
    # process-wide thread count to 1; the main thread keeps the count it has without rustorch,
    # for CPU ops and for rustorch's own parallel kernels (cpp_ext/runtime/intra_op_threads.cpp).
    script = """
        import torch
        ds = torch.utils.data.TensorDataset(torch.zeros(8, 2))
        for _ in torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, pin_memory=True):
            pass
        torch.ones(256, 256) @ torch.ones(256, 256)
        print(torch.get_num_threads())
        if torch.accelerator.is_available():
            a = torch.ones(256, 256, device="rustorch")
            a @ a
            print(torch.get_num_threads())
        """
    with_rustorch = run_python(script, env={"OMP_NUM_THREADS": "2"})
    without = run_python(script, env={"OMP_NUM_THREADS": "2", "TORCH_DEVICE_BACKEND_AUTOLOAD": "0"})
    assert with_rustorch.split()[-2:] == ["2", "2"]
    assert without.split()[-1] == "2"


def test_import_before_torch_works():
    out = run_python(
        """
        import rustorch_device, torch
        print(torch.zeros(2, device="rustorch").sum().item())
        """
    )
    assert out.strip() == "0.0"


def test_accelerator_api():
    acc = torch.accelerator
    assert acc.is_available()
    assert acc.current_accelerator() == torch.device("rustorch")
    assert acc.device_count() == torch.rustorch.device_count() >= 1
    assert acc.current_device_index() == 0
    acc.set_device_index(0)
    acc.synchronize()
    acc.synchronize(0)
    assert isinstance(acc.memory_allocated(), int)
    assert acc.current_stream().device == torch.device("rustorch:0")


def test_torch_rustorch_mirrors_cuda_names():
    mod = torch.rustorch
    for name in [
        "is_available", "device_count", "current_device", "set_device", "device", "manual_seed",
        "manual_seed_all", "get_rng_state", "set_rng_state", "memory_stats", "synchronize",
        "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats", "empty_cache",
    ]:
        assert callable(getattr(mod, name)), name
    assert mod.is_available() and mod.device_count() >= 1
    assert mod.current_device() == 0
    with mod.device(0):
        assert mod.current_device() == 0
    mod.synchronize()
    assert torch.get_device_module("rustorch") is mod


def test_out_of_range_device_names_the_count():
    n = torch.rustorch.device_count()
    with pytest.raises(IndexError, match=rf"rustorch device index {n + 4} is out of range: {n} "):
        torch.randn(3, device=f"rustorch:{n + 4}")
    with pytest.raises(IndexError, match="out of range"):
        torch.accelerator.set_device_index(n + 4)
    with pytest.raises(IndexError, match="out of range"):
        torch.ones(2).to(f"rustorch:{n}")
    with pytest.raises(IndexError, match="out of range"):
        torch.rustorch.set_device(n)
    with pytest.raises(ValueError, match="expected a rustorch device"):
        torch.rustorch.set_device("cpu")


def test_bad_device_count_env_is_reported():
    proc = run_python_status(
        "import torch", env={"RUSTORCH_DEVICE_COUNT": "two"}
    )
    assert proc.returncode != 0
    assert "RUSTORCH_DEVICE_COUNT must be an integer" in proc.stderr


def test_several_devices():
    out = run_python(
        """
        import torch
        assert torch.rustorch.device_count() == 3
        a = torch.arange(4.0, device="rustorch:2")
        b = a.to("rustorch:1")
        print(a.device, b.device, (b * 2).device, b.cpu().tolist())
        with torch.rustorch.device(1):
            print(torch.rustorch.current_device(), torch.empty(1, device="rustorch").device)
        print(torch.rustorch.current_device())
        torch.rustorch.set_device(2)
        print(torch.accelerator.current_device_index(), torch.ones(1, device="rustorch").device)
        torch.manual_seed(3)
        s0, s2 = torch.rustorch.get_rng_state(0), torch.rustorch.get_rng_state(2)
        print(torch.equal(s0, s2))
        x = torch.ones(3, device="rustorch:1")
        print(torch.rustorch.memory_allocated(1) > 0, torch.rustorch.memory_allocated(0))
        import threading  # the current device is per thread
        seen = []
        t = threading.Thread(target=lambda: seen.append(torch.rustorch.current_device()))
        t.start(); t.join()
        print(torch.rustorch.current_device(), seen[0])
        """,
        env={"RUSTORCH_DEVICE_COUNT": "3"},
    )
    lines = out.strip().splitlines()
    assert lines[0] == "rustorch:2 rustorch:1 rustorch:1 [0.0, 1.0, 2.0, 3.0]"
    assert lines[1] == "1 rustorch:1"
    assert lines[2] == "0"
    assert lines[3] == "2 rustorch:2"
    assert lines[4] == "True"
    assert lines[5] == "True 0"
    assert lines[6] == "2 0"


def test_events_and_streams():
    start = torch.Event(device="rustorch", enable_timing=True)
    end = torch.Event(device="rustorch", enable_timing=True)
    start.record()
    torch.ones(1000, device="rustorch").sum()
    end.record()
    end.synchronize()
    assert start.query() and end.query()
    assert start.elapsed_time(end) >= 0.0
    stream = torch.accelerator.current_stream()
    stream.synchronize()
    assert stream.query()
