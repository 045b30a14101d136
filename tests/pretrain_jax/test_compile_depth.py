"""Compile cost against depth: with scanned layers the train step is one program whatever the depth.

Compile time itself is measured by benchmarks/compile_time.py; here its cause is checked
on the compiled program, which is deterministic: anything added outside the scan per
layer (unstacked parameters, per-layer metrics or optimizer pieces) grows it.
"""

import jax
import pytest

from configs import tiny
from pretrain_jax import aot


def compiled_instructions(depth: int, scan_layers: bool) -> int:
    """HLO instructions of the train step compiled as the loop runs it, fsdp over 8 devices (bodies count once)."""
    config = tiny.get_config()
    config.model.update(num_layers=depth, scan_layers=scan_layers)
    config.mesh.fsdp = 8
    jax.clear_caches()
    text = aot.compile_train_step(config, jax.devices()[:8]).as_text()
    return sum(" = " in line for line in text.splitlines())


@pytest.mark.parametrize("scan_layers", [True, False])
def test_only_unrolled_layers_grow_the_compiled_program_with_depth(scan_layers):
    shallow, deep = compiled_instructions(2, scan_layers), compiled_instructions(4, scan_layers)
    if scan_layers:
        assert abs(deep - shallow) <= 0.02 * shallow, (shallow, deep)
    else:  # each layer is its own code: the measure sees depth
        assert deep > 1.5 * shallow, (shallow, deep)
