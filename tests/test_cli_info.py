"""``tami info`` and ``tami convert`` through the CLI entry point: output, one-line errors and exit codes."""

from __future__ import annotations

import pytest
import torch

import tami.backbones as tb
from tami.cli.main import main


def _rows(out: str) -> dict[str, str]:
    """``{preset: parameter count}`` from the table ``tami info`` prints."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) == 4 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = cells[1]
    return rows


def test_info_lists_every_backbone_and_preset_with_parameter_counts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == set(tb.names()) | set(tb.preset_names())
    assert rows["retinexformer"] == rows["retinexformer.sdsd_indoor"] == "1,605,701"
    assert "retinexformer.released" in rows
    assert "torch " in out


def test_info_pattern_filters(capsys):
    assert main(["info", "retinexformer.*"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows and all(name.startswith("retinexformer.") for name in rows)
    assert len(rows) == len(tb.preset_names("retinexformer.*"))


@pytest.mark.parametrize("command", ["info", "convert"])
def test_help_describes_each_subcommand(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--no-such-option"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_convert_errors_are_one_line_with_exit_code(tmp_path, capsys):
    missing = tmp_path / "missing.pth"
    assert main(["convert", str(missing), str(tmp_path / "out.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and err.count("\n") == 1
    assert "Traceback" not in err

    src = tmp_path / "small.pth"
    torch.save(tb.create("retinexformer", n_feat=8, num_blocks=[1, 1, 1]).state_dict(), src)
    assert main(["convert", str(src), str(tmp_path / "out.pth")]) == 2  # a usage error
    assert "must end in .safetensors" in capsys.readouterr().err

    # An unknown backbone name is a usage error with suggestions.
    assert main(["convert", str(src), str(tmp_path / "out.safetensors"), "--backbone", "retinexformr"]) == 2
    assert "retinexformer" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_with_explicit_preset_logs_what_it_wrote(tmp_path, capsys):
    src, out = tmp_path / "official.pth", tmp_path / "out.safetensors"
    torch.save({"params": tb.create("retinexformer").state_dict()}, src)
    assert main(["convert", str(src), str(out), "--backbone", "retinexformer.lol_v1"]) == 0
    assert "1,605,701 parameters" in capsys.readouterr().err
    assert tb.load(out).config == tb.create("retinexformer").config


def test_info_pattern_matching_nothing_says_so_and_lists_the_bundled_models(capsys):
    assert main(["info", "retinexformr*"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no backbone or preset matches 'retinexformr*'" in captured.err and "bundled models: demo" in captured.err
    assert main(["info", "demo"]) == 0
    assert "demo: bundled model (retinexformer + TAMI adapter)" in capsys.readouterr().out
    assert main(["info", "restormer"]) == 0
    out = capsys.readouterr().out
    assert "bundled models (tami enhance --model NAME): demo" in out and "size: frame sides are padded" in out
