"""tami.registry and the registries built on it: one verb set, tami.errors types, and the CLI's exit codes for them."""

from __future__ import annotations

import pytest

import tami.backbones as tb
import tami.cli.info
from tami.cli.main import main
from tami.errors import InputError, OptionError, TamiError, UnknownNameError, UsageError
from tami.metrics import create_flow, create_metric, list_flows, list_metrics
from tami.registry import Registry


def _toy_registry() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("round")
    class Round:
        def __init__(self, radius: float = 1.0, *, filled: bool = False) -> None:
            self.radius, self.filled = radius, filled

    @reg.register("square")
    def square(side: float = 2.0) -> tuple[str, float]:
        return "square", side

    @reg.register("plain")
    class Plain:
        pass

    @reg.register("free")
    def free(**options: object) -> dict:
        return dict(options)

    return reg


def test_unknown_name_is_a_usage_error_with_close_matches_and_the_known_list():
    reg = _toy_registry()
    with pytest.raises(UnknownNameError) as info:
        reg.get("rund")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, UsageError) and isinstance(err, TamiError)
    # A sentence, not a quoted key (KeyError's str() would add quotes).
    assert str(err) == "unknown widget 'rund'; did you mean round? (known: free, plain, round, square)"
    with pytest.raises(UnknownNameError, match=r"^unknown widget 'zzz' \(known: free, plain, round, square\)$"):
        reg.create("zzz")


def test_create_checks_options_against_the_signature():
    reg = _toy_registry()
    made = reg.create("round", radius=3.0, filled=True)
    assert (made.radius, made.filled) == (3.0, True)
    assert reg.create("square", side=5.0) == ("square", 5.0)
    assert reg.create("free", anything=1) == {"anything": 1}  # **options: the entry checks for itself
    with pytest.raises(OptionError, match=r"^widget 'round' has no option 'colour', 'size'; its options are radius, "
                                          r"filled$") as info:
        reg.create("round", size=1, colour="red")
    assert isinstance(info.value, TypeError) and isinstance(info.value, UsageError)
    with pytest.raises(OptionError, match="widget 'square' has no option 'radius'; its options are side"):
        reg.create("square", radius=1.0)
    assert type(reg.create("plain")).__name__ == "Plain"
    with pytest.raises(OptionError, match="widget 'plain' has no option 'size'; its options are none"):
        reg.create("plain", size=1)


def test_duplicates_fail_naming_both_modules_and_names_filter():
    reg = _toy_registry()
    with pytest.raises(KeyError, match=f"widget 'round' is already registered by {__name__}"):
        reg.register("round")(lambda: None)
    assert reg.names() == ["free", "plain", "round", "square"]
    assert reg.names("s*") == ["square"]
    assert "round" in reg and "oval" not in reg and len(reg) == 4


# Every kind of registry offers create_<kind>(name, **options) and list_<kind>s(pattern).
KINDS = {
    "backbone": (tb.create_backbone, tb.list_backbones, "retinexformer", {"n_feat": 8, "num_blocks": [1, 1, 1]}),
    "metric": (create_metric, list_metrics, "ssim", {"window": "uniform"}),
    "flow method": (create_flow, list_flows, "dis", {"preset": "ultrafast"}),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_registry_has_the_same_verbs_and_errors(kind):
    create, list_all, name, options = KINDS[kind]
    names = list_all()
    assert names == sorted(names) and name in names
    assert list_all(name[:3] + "*") == [n for n in names if n.startswith(name[:3])]
    assert list_all("no-such-*") == []
    assert create(name, **options) is not None
    with pytest.raises(UnknownNameError, match=f"unknown {kind} '{name}x'; did you mean {name}"):
        create(name + "x")
    option = next(iter(options))
    with pytest.raises(OptionError, match=f"{kind} '{name}' has no option 'bogus'; its options are .*{option}"):
        create(name, bogus=1)


def test_a_metric_without_options_refuses_every_option():
    assert create_metric("mabd").options() == {}
    with pytest.raises(OptionError, match="metric 'mabd' has no option 'flow'; its options are none"):
        create_metric("mabd", flow="dis")


def test_option_values_are_still_input_errors():
    with pytest.raises(InputError, match="DIS preset must be one of"):
        create_flow("dis", preset="slow")


def test_backbone_short_forms_are_the_same_functions():
    assert tb.create is tb.create_backbone and tb.names is tb.list_backbones
    assert tb.preset_names is tb.list_backbone_presets


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_cli_reports_unknown_names_in_one_line_with_exit_2(tmp_path, capsys):
    assert main(["evaluate", "--gt", str(tmp_path), "--pred", str(tmp_path), "--metrics", "psnr,ssmi"]) == 2
    assert _one_line(capsys) == (
        "error: unknown metric 'ssmi'; did you mean ssim? (known: ewarp, jitter, mabd, psnr, ssim)\n")


def test_cli_exit_codes_separate_usage_input_and_internal_errors(monkeypatch, capsys):
    def raising(exc: Exception):
        def run(args: object) -> int:
            raise exc
        return run

    monkeypatch.setattr(tami.cli.info, "run", raising(OptionError("metric 'psnr' has no option 'x'")))
    assert main(["info"]) == 2
    assert _one_line(capsys) == "error: metric 'psnr' has no option 'x'\n"
    monkeypatch.setattr(tami.cli.info, "run", raising(InputError("bad frame")))
    assert main(["info"]) == 1
    assert _one_line(capsys) == "error: bad frame\n"
    # A KeyError from inside the library is a bug, not a usage error: it says so and asks for --debug.
    monkeypatch.setattr(tami.cli.info, "run", raising(KeyError("frames")))
    assert main(["info"]) == 1
    assert _one_line(capsys) == "internal error: KeyError: 'frames' (run with --debug for the traceback)\n"
