"""Training configuration: frozen typed dataclasses, loaded from YAML with ``--set a.b=c`` overrides.

A config file is a mapping with the sections of :class:`TrainConfig`; every key is checked against the dataclass
fields (unknown keys are errors naming close matches) and every value against the field's type. Override values are
parsed with ``yaml.safe_load`` (``--set optim.lr=1e-4``, ``--set data.crop=null``,
``--set model.backbone_options.n_feat=16``); nothing is ever evaluated as code.

Free-form mappings (``model.backbone_options``, ``model.adapter_options``, ``loss``) are handed to the backbone,
adapter and loss constructors, which check their own keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ..errors import InputError, UsageError
from ..metrics.registry import METRICS
from .recurrence import RecurrencePolicy

Stage = Literal["image", "video"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic paired low-light videos generated into the run folder (``tami.data.synthetic``).

    Attributes:
        videos: number of videos.
        frames: frames per video.
        size: ``(height, width)`` of the frames.
        seed: generator seed (use different seeds for training and validation).
        sources: photographs to animate: ``builtin:train`` (the built-in training images), ``builtin:test`` (held
            out for evaluation; never train on them), ``builtin`` (all), or a folder of images (e.g. the photo
            pool's ``train`` folder, ``docs/PHOTOS.md``).
        preset: generator preset: ``v2`` (calibrated noise, exposure drift and steps, three motion strata) or
            ``v1`` (the first generator, which made the bundled demo model).
        exposure: ``(low, high)`` exposure factor range of the darkening; null = the preset's.
        flicker: std of the per-frame log-exposure jitter; null = the preset's.
        color_cast: std of a per-clip colour cast; null = the preset's.
        options: any other generator option (``drift``, ``ae_rate``, ``strata``, ``target_gain``, ...; see
            ``tami.data.synthetic.SynthOptions``).
    """

    videos: int = 8
    frames: int = 16
    size: tuple[int, int] = (128, 128)
    seed: int = 0
    sources: str = "builtin:train"
    preset: str = "v2"
    exposure: tuple[float, float] | None = None
    flicker: float | None = None
    color_cast: float | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def generator_options(self) -> dict[str, Any]:
        """Option overrides for ``tami.data.synthetic.generate_dataset`` (the preset fills in the rest)."""
        named = {"exposure": self.exposure, "flicker": self.flicker, "color_cast": self.color_cast}
        return {**{k: v for k, v in named.items() if v is not None}, **self.options}


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from (``tami.data.datasets.build_dataset``).

    Attributes:
        layout: dataset layout (``generic`` = ``ROOT/{input,GT}/<video>/<frame>``, ``sdsd``, ``smid``, ...).
        root: dataset root; generated into the run folder when ``synthetic`` is set and ``root`` is null.
        split: ``train``, ``test`` or ``all``.
        protocol: SDSD protocol (``sdsd-dynamic``, ``sdsd-static``); a test split uses the protocol's frames.
        scene: SDSD scene (``indoor``, ``outdoor``); null = every scene found.
        resize: resize frames to ``[height, width]`` before cropping; null = as stored.
        clip_len: frames per training clip; for validation, the frames evaluated from each video's start
            (null = the whole video, within the protocol's frame range).
        crop: square random crop (training) or centre crop (validation) in pixels; null = full frames.
        flip: random horizontal/vertical flips shared by a clip and its ground truth (training only).
        synthetic: generate a synthetic dataset instead of reading ``root``.
    """

    layout: str = "generic"
    root: str | None = None
    split: str = "train"
    protocol: str | None = None
    scene: str | None = None
    resize: tuple[int, int] | None = None
    clip_len: int | None = 5
    crop: int | None = None
    flip: bool = False
    synthetic: SyntheticConfig | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The backbone and the adapter.

    Attributes:
        backbone: backbone arch or preset (``retinexformer``, ``retinexformer.sdsd_indoor``).
        backbone_options: constructor overrides under the official argument names (``{n_feat: 16}``).
        backbone_weights: official checkpoint, tami backbone file, or a stage-``image`` run folder (its
            ``export/backbone.safetensors``); null = random initialisation (stage ``image`` from scratch).
        adapter_options: :class:`tami.adapter.TAMIConfig` overrides on top of the backbone's adapter preset.
        adapter_weights: start the adapter from this adapter file or stage-``video`` run folder (its
            ``export/adapter.safetensors``) to fine-tune; null = fresh (identity) adapter.
    """

    backbone: str = "retinexformer"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    backbone_weights: str | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)
    adapter_weights: str | None = None


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer, learning-rate schedule, clipping and EMA.

    Attributes:
        name: ``adam``, ``adamw`` or ``sgd`` (momentum = ``betas[0]``).
        lr: peak learning rate.
        betas: Adam betas.
        eps: Adam epsilon.
        weight_decay: decoupled (AdamW) or L2 (Adam, SGD) weight decay.
        warmup: linear warm-up iterations.
        min_lr: learning rate at the end of the cosine decay.
        grad_clip: max L2 norm of the gradient of the trained weights; null = no clipping.
        ema: decay of an exponential moving average of the trained weights (e.g. 0.999), used for validation and
            export; null = off.
    """

    name: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup: int = 0
    min_lr: float = 1e-6
    grad_clip: float | None = 1.0
    ema: float | None = None


@dataclass(frozen=True)
class LoopConfig:
    """The iteration loop.

    Attributes:
        iterations: optimizer steps in total.
        batch_size: clips per step on each process (global batch = batch_size x processes).
        workers: data-loading worker processes (0 = load in the training process).
        teacher_forcing: probability that a frame's memory value is written from the ground truth instead of the
            prediction (stage ``video``; frames after the first ``teacher_first``).
        teacher_first: the first ``n`` frames of every clip always write the ground truth (stage ``video``).
        detach_every: truncated back-propagation through time: detach the memory every n frames; null = full clip.
        log_every: write the averaged loss terms every n steps.
        checkpoint_every: write ``checkpoints/last.pt`` every n steps (and always at the end); null = only at the end.
    """

    iterations: int = 1000
    batch_size: int = 2
    workers: int = 0
    teacher_forcing: float = 0.5
    teacher_first: int = 0
    detach_every: int | None = None
    log_every: int = 10
    checkpoint_every: int | None = 500

    def recurrence(self) -> RecurrencePolicy:
        """The teacher-forcing and truncation policy of these settings."""
        return RecurrencePolicy(self.teacher_forcing, self.teacher_first, self.detach_every)


@dataclass(frozen=True)
class MemoryStopConfig:
    """Stop a stage-``video`` run whose memory was not learned (``val.memory_stop``; needs ``val.diagnostics``).

    At a validation at step ``>= after``, when ``diag/stateless_gap < min_gap`` (percent E_warp) and
    ``diag/prior_sensitivity < min_sensitivity``, the run stops with a checkpoint and a warning (never when no frame
    reads a memory, e.g. ``memory_frames`` 0: there is no prior sensitivity).

    Attributes:
        after: first step at which the rule applies.
        min_gap: stateless gap in percent of E_warp the memory must reach.
        min_sensitivity: output luminance change per unit prior shift the model must reach.
    """

    after: int = 3000
    min_gap: float = 0.5
    min_sensitivity: float = 1e-3


@dataclass(frozen=True)
class ValConfig:
    """Validation.

    Attributes:
        every: validate every n steps (and at the end); null = never.
        metrics: metric names of ``tami.metrics`` (``psnr``, ``ssim``, ``mabd``, ``ewarp``, ``jitter``).
        best: metric that selects ``checkpoints/best.pt`` (must be in ``metrics``).
        max_videos: validate on at most this many videos (the first ones); null = all.
        at_start: also validate before the first iteration of a fresh run (step 0). In stage ``video`` the fresh
            adapter is the identity, so step 0 scores the frozen backbone alone: the baseline the adapter must beat.
        diagnostics: stage ``video``: also log the memory diagnostics ``diag/*`` at every validation (stateless
            gap, prior sensitivity, token cosine, gradient ratio; ``tami.train.diagnostics``); ignored in stage
            ``image``.
        memory_stop: stop rule on those diagnostics (:class:`MemoryStopConfig`); null = never stop early.
        data: the validation set; null = no validation.
    """

    every: int | None = 500
    metrics: tuple[str, ...] = ("psnr", "ssim", "mabd")
    best: str = "psnr"
    max_videos: int | None = None
    at_start: bool = True
    diagnostics: bool = True
    memory_stop: MemoryStopConfig | None = None
    data: DataConfig | None = None


@dataclass(frozen=True)
class TrainConfig:
    """A complete training recipe.

    Attributes:
        stage: ``image`` trains the backbone on frames as images; ``video`` freezes it and trains the adapter.
        seed: seeds model initialisation, data order and augmentation.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        loss: loss term weights for ``tami.losses.build_loss`` (``{charbonnier: 1.0, l_sm: 1.0}``).
    """

    stage: Stage = "video"
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: dict[str, float] = field(default_factory=lambda: {"charbonnier": 1.0})
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    val: ValConfig = field(default_factory=ValConfig)


# ----------------------------------------------------------------------------------------------------------------
# Loading, overriding, checking


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into the key path and the YAML-parsed value.

    Raises:
        UsageError: no ``=`` or an empty key.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UsageError(f"--set expects KEY=VALUE with a dotted key (e.g. optim.lr=1e-4), got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise UsageError(f"--set {key}: cannot parse {raw!r} as a YAML value ({exc.problem})") from None
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the raw config mapping with each ``a.b=c`` override applied (intermediate maps created)."""
    out = _deep_copy(raw)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise UsageError(
                    f"--set {item}: {'.'.join(path[: i + 1])} is {child!r}, not a section; set it as a whole instead"
                )
            node = child
        node[path[-1]] = value
    return out


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config file into a mapping.

    Raises:
        UsageError: missing file, invalid YAML, or a top level that is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist; pass a YAML recipe such as configs/demo_image.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"config file {path} must hold a mapping of sections, got {type(raw).__name__}")
    return raw


# Config keys that hold file or folder paths (``sources`` only when it names a folder, not ``builtin...``).
PATH_KEYS = (
    ("model", "backbone_weights"), ("model", "adapter_weights"), ("data", "root"), ("data", "synthetic", "sources"),
    ("val", "data", "root"), ("val", "data", "synthetic", "sources"),
)
PLACEHOLDER = "SET_ME"


def resolve_paths(raw: dict[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy of ``raw`` with the relative paths of :data:`PATH_KEYS` made absolute against ``base`` (``~`` expanded).

    A config file's paths are relative to the file's folder, ``--set`` values to the current folder; resolved once
    on loading, the recorded ``RUN/config.yaml`` works from any folder.
    """
    out = _deep_copy(raw)
    for keys in PATH_KEYS:
        node = out
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get(keys[-1]) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value or value.startswith("builtin"):
            continue
        path = Path(value).expanduser()
        node[keys[-1]] = str(path if path.is_absolute() else Path(os.path.abspath(Path(base) / path)))
    return out


def check_placeholders(raw: dict[str, Any]) -> None:
    """Raise one :class:`UsageError` naming every value still holding the ``SET_ME`` placeholder of a recipe."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, str) and PLACEHOLDER in node:
            found.append(f"{where}={node}")

    walk(raw, "")
    if found:
        keys = " ".join(f"--set {item.partition('=')[0]}=..." for item in found)
        raise UsageError(
            f"the config still has {len(found)} placeholder{'s' if len(found) != 1 else ''} to fill in "
            f"({', '.join(found)}); edit the file or pass {keys}"
        )


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load a :class:`TrainConfig` from a YAML file (or the defaults) with ``a.b=c`` overrides.

    Relative paths in the file are relative to the file's folder, those of overrides to the current folder; the
    loaded config holds them as absolute paths.

    Raises:
        UsageError: unknown keys, values of the wrong type, unfilled ``SET_ME`` placeholders, or inconsistent
            settings; the message names the key.
    """
    raw = read_yaml(path) if path is not None else {}
    check_placeholders(apply_overrides(raw, list(overrides)))
    if path is not None:
        raw = resolve_paths(raw, Path(path).parent)
    return from_dict(resolve_paths(apply_overrides(raw, list(overrides)), Path.cwd()))


def from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and check a :class:`TrainConfig` from a plain mapping."""
    config = _build(TrainConfig, raw, "")
    check(config)
    return config


def to_dict(config: Any) -> Any:
    """Plain mapping of a config dataclass (tuples as lists), suitable for YAML and JSON."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def dump_yaml(config: TrainConfig, header: str = "") -> str:
    """The resolved config as YAML text, with ``header`` lines as comments on top."""
    body = yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + body


def higher_is_better(metric: str) -> bool:
    """Direction of a validation metric, from the metric registry (``MetricInfo.lower_better``)."""
    return not METRICS.get(metric).info.lower_better


def check(config: TrainConfig) -> None:
    """Raise :class:`UsageError` for settings that cannot work together."""
    if config.data.clip_len is None:
        raise UsageError("data.clip_len must be set for training (frames per clip, e.g. 5)")
    positive = {
        "train.iterations": config.train.iterations,
        "train.batch_size": config.train.batch_size,
        "train.log_every": config.train.log_every,
        "data.clip_len": config.data.clip_len,
    }
    for key, value in positive.items():
        if value < 1:
            raise UsageError(f"{key} must be at least 1, got {value}")
    optional_positive = {
        "train.checkpoint_every": config.train.checkpoint_every,
        "train.detach_every": config.train.detach_every,
        "val.every": config.val.every,
        "data.crop": config.data.crop,
        "val.max_videos": config.val.max_videos,
        "val.data.clip_len": config.val.data.clip_len if config.val.data is not None else None,
    }
    for key, value in optional_positive.items():
        if value is not None and value < 1:
            raise UsageError(f"{key} must be at least 1 or null, got {value}")
    if config.train.workers < 0:
        raise UsageError(f"train.workers must be >= 0, got {config.train.workers}")
    config.train.recurrence()  # raises UsageError on a bad teacher-forcing setting
    if config.optim.lr <= 0 or config.optim.min_lr < 0 or config.optim.min_lr > config.optim.lr:
        raise UsageError(
            f"need 0 <= optim.min_lr <= optim.lr and optim.lr > 0, got lr={config.optim.lr}, "
            f"min_lr={config.optim.min_lr}"
        )
    if config.optim.warmup < 0:
        raise UsageError(f"optim.warmup must be >= 0, got {config.optim.warmup}")
    if config.optim.grad_clip is not None and config.optim.grad_clip <= 0:
        raise UsageError(f"optim.grad_clip must be positive or null, got {config.optim.grad_clip}")
    if config.optim.ema is not None and not 0.0 < config.optim.ema < 1.0:
        raise UsageError(f"optim.ema is a decay in (0, 1) such as 0.999, or null; got {config.optim.ema}")
    if config.data.root is None and config.data.synthetic is None:
        raise UsageError("data.root is not set; point it at a dataset or set data.synthetic to generate one")
    for where, data in (("data", config.data), ("val.data", config.val.data)):
        if data is not None and data.synthetic is not None:
            _check_synthetic(data.synthetic, f"{where}.synthetic")
    val = config.val
    if val.data is not None:
        if val.data.root is None and val.data.synthetic is None:
            raise UsageError("val.data.root is not set; point it at a dataset, set val.data.synthetic, or val.data=null")
        unknown = [m for m in val.metrics if m not in METRICS]
        if unknown or not val.metrics:
            raise UsageError(
                f"val.metrics must name metrics among {', '.join(METRICS.names())}, got {list(val.metrics)}"
            )
        if val.best not in val.metrics:
            raise UsageError(f"val.best={val.best!r} must be one of val.metrics {list(val.metrics)}")
        diagnosed = config.stage == "video" and val.diagnostics
        if diagnosed and val.data.clip_len is not None and val.data.clip_len < 2:
            raise UsageError(f"val.diagnostics needs validation clips of at least 2 frames, got val.data.clip_len="
                             f"{val.data.clip_len}; raise it or set val.diagnostics=false")
    stop = val.memory_stop
    if stop is not None:
        if config.stage != "video" or not val.diagnostics or val.data is None or val.every is None:
            raise UsageError("val.memory_stop needs stage video with validation (val.data, val.every) and "
                             "val.diagnostics=true; set those or val.memory_stop=null")
        if stop.after < 0 or stop.min_gap < 0 or stop.min_sensitivity < 0:
            raise UsageError(f"val.memory_stop after, min_gap and min_sensitivity must be >= 0, got {stop}")
    negative = {k: w for k, w in config.loss.items() if w < 0}
    if negative or not config.loss:
        raise UsageError(f"loss must map term names to weights >= 0, got {dict(config.loss)}")


def _check_synthetic(syn: SyntheticConfig, where: str) -> None:
    """Raise :class:`UsageError` naming ``where`` for an unknown preset or generator option."""
    from ..data.synthetic import synth_options

    try:
        synth_options(syn.preset, **syn.generator_options())
    except InputError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _build(cls: type, raw: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``raw``, checking keys and value types."""
    if not isinstance(raw, dict):
        raise UsageError(f"config {where or 'file'} must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else f" (known keys: {', '.join(names)})"
            raise UsageError(f"unknown config key {path!r}{hint}")
        kwargs[key] = _convert(hints[key], value, path)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0] if len(inner) == 1 else Union[tuple(inner)], value, path)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, path)
    if origin is Literal:
        if value not in args:
            raise UsageError(f"config key {path!r} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"config key {path!r} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise UsageError(f"config key {path!r} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UsageError(f"config key {path!r} must be a mapping, got {value!r}")
        if args and args[1] is not Any:
            return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
        return _deep_copy(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UsageError(f"config key {path!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"config key {path!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            value = _number_from_text(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"config key {path!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UsageError(f"config key {path!r} must be a string, got {value!r}")
        return value
    raise UsageError(f"config key {path!r} has an unsupported type {tp!r}")


def _number_from_text(text: str) -> float | str:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; return it as the number it obviously is, else unchanged."""
    try:
        return float(text)
    except ValueError:
        return text
