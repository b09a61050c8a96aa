"""The exit-code rule, the same for every command: 2 for usage and config errors (found before any work), 1 for
failures while working (missing or unreadable data and weights), 0 for success; always one line on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tami.cli.main import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("codes")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"root": "data"}, "val": {"data": None}}))
    clip = root / "clip"
    clip.mkdir()
    return {"root": root, "recipe": recipe, "clip": clip}


CASES = [
    # usage and config errors: 2
    (["train", "{recipe}", "--set", "optim.lrr=1"], 2, "did you mean lr"),
    (["train", "{recipe}", "--set", "stage=images"], 2, "must be one of"),
    (["train", "{recipe}", "--set", "model.backbone=retinexformr"], 2, "retinexformer"),
    (["train", "{recipe}", "--set", "loss={{charbonier: 1}}"], 2, "unknown loss term"),
    (["train", str(REPO / "configs" / "sdsd_retinexformer.yaml")], 2,
     "the config still has 3 placeholders to fill in (model.backbone_weights=SET_ME/retinexformer_sdsd_indoor.pth, "
     "data.root=SET_ME/SDSD, val.data.root=SET_ME/SDSD)"),
    (["enhance", "{clip}", "--shard", "3/2"], 2, "--shard K/N needs"),
    (["evaluate", "--gt", "{clip}"], 2, "nothing to evaluate"),
    (["report", "--method", "tami", "-o", "{root}/r"], 2, "--method expects NAME=PATH"),
    (["timeslice", "--method", "a={clip}", "--x", "1", "--frames", "x:y:z", "-o", "{root}/t"], 2, "--frames expects"),
    (["convert", "{recipe}", "{root}/out.pth"], 2, "must end in .safetensors"),
    (["convert", "{recipe}", "{root}/out.safetensors", "--arch", "nope"], 2, "nope"),
    # failures while working: 1
    (["train", "{recipe}", "-o", "{root}/run"], 1, "is not a folder; fix data.root"),
    (["enhance", "{clip}", "--model", "{root}/missing.safetensors"], 1, "does not exist"),
    (["evaluate", "--gt", "{root}/missing", "--pred", "{clip}", "-o", "{root}/e"], 1, "GT folder not found"),
    (["convert", "{root}/missing.pth", "{root}/out.safetensors"], 1, "does not exist"),
    (["convert", "{recipe}", "{root}/out.safetensors"], 1, "cannot read"),
    (["info", "nothing*"], 1, "no backbone or preset matches"),
]


@pytest.mark.parametrize("argv, code, message", CASES, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None)
def test_exit_codes(files: dict[str, Path], capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                    message: str) -> None:
    args = [a.format(**files) for a in argv]
    assert main(["-q", *args]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["enhance", "x.mp4", "--precision", "fp64"])
    assert exc.value.code == 2
