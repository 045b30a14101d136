"""The GPU training benchmark runs end to end (here on CPU), reports a failed variant as a row, and
knows the datasheet peaks of the GPUs its MFU is quoted against."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import gpu_throughput  # noqa: E402


def test_runs_our_train_step_and_reports_a_kernel_that_cannot_run_as_a_failed_row():
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_throughput.py", "--configs", "tiny", "--attention", "xla,cudnn",
         "--steps", "2", "--warmup", "1", "--no_write"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[2]: line for line in result.stdout.splitlines() if line.startswith("| tiny |")}
    assert set(rows) == {"xla", "cudnn"}
    cells = rows["xla"].split(" | ")
    assert cells[3] == "8 x 64" and float(cells[5].replace(",", "")) > 0  # batch x seq, tokens/s
    first, last = map(float, cells[-1].rstrip(" |").split(" -> "))
    assert last < first  # three AdamW steps on one batch lower its loss
    assert "failed: ConfigError: model.attention_impl='cudnn' runs on NVIDIA GPUs only" in rows["cudnn"]


def test_a_variant_whose_process_dies_becomes_an_error_not_the_end_of_the_run():
    assert gpu_throughput.in_fresh_process(os._exit, 3) == {
        "error": "the process died (killed for memory, or a crash in native code)"}


def test_datasheet_peaks_tell_the_h100_variants_apart():
    assert gpu_throughput.datasheet_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_throughput.datasheet_peak("NVIDIA H100 PCIe") == 756e12
    assert gpu_throughput.datasheet_peak("NVIDIA H200") == 989e12
    assert gpu_throughput.datasheet_peak("Tesla T4") is None
