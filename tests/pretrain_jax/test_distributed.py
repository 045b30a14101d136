"""Two processes joined by jax.distributed on localhost train like one process with all the devices."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_command(config, workdir, *extra):
    return [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={workdir}",
            f"--config.data.dir={config.data.dir}", f"--config.num_train_steps={STEPS}", *extra]


def env_with_devices(count):
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}", "JAX_PLATFORMS": "cpu"}


def test_two_processes_match_one_process_and_their_checkpoint_resumes_in_one(tiny_config, tmp_path, restore):
    one, two = str(tmp_path / "one_process"), str(tmp_path / "two_processes")
    subprocess.run(train_command(tiny_config, one), cwd=REPO, env=env_with_devices(8), check=True,
                   capture_output=True)
    port = free_port()
    processes = [subprocess.Popen(
        train_command(tiny_config, two, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                      f"--process_id={i}"),
        cwd=REPO, env=env_with_devices(4), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "mesh {'data': 8" in outputs[0]  # 2 processes x 4 devices form one mesh
    assert "step" not in outputs[1].replace("step_", "")  # only process 0 logs progress

    tiny_config.num_train_steps = STEPS
    (single, single_next), (joint, joint_next) = restore(tiny_config, one), restore(tiny_config, two)
    assert int(joint.step) == STEPS
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(joint.params)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
    # Read by one process, the two processes' data position gives the batch one process would take next.
    np.testing.assert_array_equal(joint_next, single_next)
