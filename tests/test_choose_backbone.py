"""tools/choose_backbone.py: the registered rule for the bundled model's backbone."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("choose_backbone",
                                               Path(__file__).parents[1] / "tools" / "choose_backbone.py")
choose_backbone = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(choose_backbone)


def _run(root: Path, name: str, psnrs: list[float], iterations: int = 1000) -> Path:
    run = root / name
    run.mkdir()
    rows = [{"step": 500 * i, "metric/psnr": p} for i, p in enumerate(psnrs)]
    rows.insert(1, {"step": 20, "loss/total": 0.1})
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "config.yaml").write_text(f"train: {{iterations: {iterations}}}\n")
    return run


def test_the_final_validation_decides_and_the_preferred_run_wins_ties(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    a = _run(tmp_path, "retinexformer", [20.0, 26.0, 25.5])  # best earlier, but the final value counts
    b = _run(tmp_path, "hvi_cidnet", [20.0, 24.0, 25.3])
    assert choose_backbone.main([str(a), str(b), "--prefer", str(b)]) == 0
    assert capsys.readouterr().out.strip() == str(b)  # 0.2 dB behind: within the margin
    assert choose_backbone.main([str(a), str(b), "--prefer", str(b), "--margin", "0.1"]) == 0
    assert capsys.readouterr().out.strip() == str(a)
    assert choose_backbone.main([str(a), str(b)]) == 0
    assert capsys.readouterr().out.strip() == str(a)


def test_an_unfinished_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _run(tmp_path, "a", [20.0, 26.0, 25.5])
    b = _run(tmp_path, "b", [20.0, 24.0], iterations=1000)
    assert choose_backbone.main([str(a), str(b)]) == 1
    assert "stopped at step 500 of 1000" in capsys.readouterr().err
