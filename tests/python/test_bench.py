"""python -m muonlab.bench: runs, checks that muonlab and the plain-PyTorch
Muon agree before timing them, prints its table, and stops when they do not
agree."""
import subprocess
import sys

import pytest
import torch

from muonlab import bench

VARIANTS = ("plain PyTorch Muon (per-matrix loop)", "muonlab.optim.Muon.step()", "muonlab._C.muon_step alone",
            "muonlab, ns_method='gram'")


def test_quick_run_prints_agreement_and_table(tmp_path):
    # From an empty folder, so that the installed package is the one run.
    result = subprocess.run([sys.executable, "-m", "muonlab.bench", "--quick", "--repeats", "2"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"torch {torch.__version__}") for line in lines), result.stdout
    assert any(line.startswith("OpenMP runtime: ") and line.endswith("(torch's)") for line in lines), result.stdout
    assert any(line.startswith("OpenMP idle threads: ") for line in lines), result.stdout
    agreement = [line for line in lines if line.startswith("agreement")]
    assert agreement and all(line.endswith(": OK") for line in agreement), result.stdout
    assert agreement[0].startswith("agreement, NS in fp32:"), result.stdout
    assert any("ns_method='gram'" in line for line in agreement), result.stdout
    assert any(line.split() == ["variant", "ms/step", "vs", "plain"] for line in lines), result.stdout
    for variant in VARIANTS:
        row = [line for line in lines if line.startswith(variant)]
        assert len(row) == 1, f"no row for {variant}:\n{result.stdout}"
        ms, ratio = row[0][len(variant):].split()
        assert float(ms) > 0 and ratio.endswith("x") and float(ratio[:-1]) > 0
    assert any(line.startswith("Python layer overhead:") for line in lines), result.stdout
    # PyTorch's own Muon, where this torch has one: checked, then timed.
    if hasattr(torch.optim, "Muon"):
        assert any(line.startswith("agreement, torch.optim.Muon against muonlab") and line.endswith(": OK")
                   for line in lines), result.stdout
        assert len([line for line in lines if line.startswith("torch.optim.Muon ")]) == 1, result.stdout
    else:
        assert any(line.startswith("torch.optim.Muon: not in torch") for line in lines), result.stdout
    adamw_agreement = [line for line in lines if line.startswith("agreement, AdamW against torch.optim.AdamW")]
    assert adamw_agreement and all(line.endswith(": OK") for line in adamw_agreement), result.stdout
    assert any(line.split() == ["variant", "ms/step", "vs", "torch"] for line in lines), result.stdout
    for variant in ("torch.optim.AdamW (default)", "muonlab AdamW (MuonWithAuxAdamW)"):
        row = [line for line in lines if line.startswith(variant)]
        assert len(row) == 1, f"no row for {variant}:\n{result.stdout}"
        ms, ratio = row[0][len(variant):].split()
        assert float(ms) > 0 and ratio.endswith("x") and float(ratio[:-1]) > 0


def test_check_agreement_refuses_different_updates():
    gen = torch.Generator().manual_seed(0)
    changes = [torch.randn(8, 4, generator=gen), torch.randn(4, 4, generator=gen)]
    assert bench.check_agreement(changes, [c.clone() for c in changes], 1e-3) == 0
    off = [changes[0], changes[1] * 1.01]
    with pytest.raises(bench.AgreementError, match="disagree"):
        bench.check_agreement(off, changes, 1e-3)
    nan = [changes[0], torch.full((4, 4), float("nan"))]
    with pytest.raises(bench.AgreementError):
        bench.check_agreement(nan, changes, 1e-3)
    with pytest.raises(bench.AgreementError):
        bench.check_agreement(changes[:1], changes, 1e-3)


@pytest.mark.parametrize("wrong", [{"nesterov": False}, {"coefficients": (1.875, -1.25, 0.375)}])
def test_a_different_plain_muon_fails_the_agreement(wrong):
    # Nesterov left out only shows from the second step on (the momentum
    # buffer starts at zero), which is why the check takes two.
    shapes = bench.gpt2_shapes(1, 16)
    weights = bench.random_tensors(shapes, torch.device("cpu"), seed=0, scale=0.02)
    grad_sets = [bench.random_tensors(shapes, torch.device("cpu"), seed=1 + i) for i in range(bench.AGREEMENT_STEPS)]
    plain_params = bench.parameters_from(weights, grad_sets[0])
    our_params = bench.parameters_from(weights, grad_sets[0])
    with pytest.raises(bench.AgreementError):
        bench.measure_agreement(bench.PlainMuon(plain_params, **wrong), plain_params,
                                bench.muonlab_muon(our_params, ns_dtype="fp32"), our_params, grad_sets,
                                bench.TOLERANCE["fp32"])


def test_bf16_pair_agrees_to_bf16_rounding(capsys):
    # The pair timed on CUDA, here on CPU.
    shapes = bench.gpt2_shapes(1, 32)
    weights = bench.random_tensors(shapes, torch.device("cpu"), seed=0, scale=0.02)
    grad_sets = [bench.random_tensors(shapes, torch.device("cpu"), seed=1 + i) for i in range(bench.AGREEMENT_STEPS)]
    _, _, worst = bench.agreeing_pair(weights, grad_sets, "bf16")
    assert 0 < worst <= bench.TOLERANCE["bf16"]
    assert capsys.readouterr().out.startswith("agreement, NS in bf16:")


def test_main_stops_before_timing_when_the_implementations_disagree(monkeypatch, capsys):
    exact = bench.zeropower_via_newtonschulz5

    def one_step_short(G, steps, *args, **kwargs):
        return exact(G, steps - 1, *args, **kwargs)

    monkeypatch.setattr(bench, "zeropower_via_newtonschulz5", one_step_short)
    with pytest.raises(SystemExit, match="disagree"):
        bench.main(["--quick"])
    assert "ms/step" not in capsys.readouterr().out
