"""Memory retrieval rule, ring buffer, IGFE attention and recurrent updates."""

from __future__ import annotations

import math

import pytest
import torch
from toy_backbone import ToyBackbone, one_thread, small_config  # noqa: F401

from tami.adapter import TAMI, KVMemory, topm_readout
from tami.adapter.icmem import gated_update
from tami.adapter.igfe import IGFE, attention_bias, head_decays
from tami.adapter.ops import scaled_grid
from tami.errors import InputError


def _naive_readout(query, keys, values, top_m):
    out = torch.zeros(query.shape[0], query.shape[1], values.shape[-1], dtype=query.dtype)
    d = keys.shape[-1]
    for b in range(query.shape[0]):
        for p in range(query.shape[1]):
            sim = torch.stack(
                [(2 * keys[b, n] @ query[b, p] - keys[b, n] @ keys[b, n]) / d**0.5 for n in range(keys.shape[1])]
            )
            keep = sim.argsort(descending=True)[:top_m]
            w = torch.softmax(sim[keep], 0)
            out[b, p] = (w[:, None] * values[b, keep]).sum(0)
    return out


@pytest.mark.parametrize("top_m", [3, None, 50])
def test_retrieval_matches_definition_and_is_chunk_invariant(top_m):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, n, c, generator=g, dtype=torch.float64) for n, c in ((7, 4), (12, 4), (12, 5)))
    expected = _naive_readout(q, k, v, top_m or 12)
    for chunk in (1, 3, 1024):
        torch.testing.assert_close(topm_readout(q, k, v, top_m, chunk), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("top_m", [3, None])
def test_retrieval_gradients_float64(top_m):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: topm_readout(a, b, c, top_m, chunk=2), (q, k, v))


def test_small_keys_read_uniformly_by_distance_but_selectively_by_cosine():
    # Two stored tokens with tiny keys, one pointing like the query: the reference's distance rule gives logits
    # (2 k.q - |k|^2) / sqrt(2) = (0.0199, -0.0001) / sqrt(2), nearly equal; the cosine rule gives (s, 0).
    q = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    k = torch.tensor([[[0.01, 0.0], [0.0, 0.01]]], dtype=torch.float64)
    v = torch.tensor([[[1.0], [0.0]]], dtype=torch.float64)
    by_distance = topm_readout(q, k, v, None)
    assert float(by_distance) == pytest.approx(1 / (1 + math.exp(-0.02 / math.sqrt(2))), abs=1e-12)
    by_cosine = topm_readout(q, k, v, None, scale=torch.tensor(10.0, dtype=torch.float64))
    assert float(by_cosine) == pytest.approx(1 / (1 + math.exp(-10.0)), abs=1e-12)
    picked = topm_readout(q, k, v, 1, scale=torch.tensor(10.0, dtype=torch.float64))
    assert float(picked) == 1.0


def test_centred_retrieval_tells_apart_tokens_that_share_one_direction():
    # Collapsed tokens: a large shared direction plus small differences. The cosine barely tells them apart;
    # centring each frame's tokens (and the query's) removes the shared part, so the read follows the differences.
    shared = torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64)
    parts = torch.tensor([[0.0, 0.1, 0.0], [0.0, -0.1, 0.0]], dtype=torch.float64)
    memory = KVMemory(1)
    tokens = (shared + parts).T.reshape(1, 3, 1, 2)  # one frame of 2 cells
    memory.write(tokens, tokens, torch.tensor([[[[1.0, 0.0]]]], dtype=torch.float64))
    query = (shared + parts[:1].repeat(2, 1)).T.reshape(1, 3, 1, 2)  # both cells look like cell 0
    scale = torch.tensor(10.0, dtype=torch.float64)
    _, plain = memory.read(query, None, 1024, (scale, scale))
    assert torch.allclose(plain, torch.full_like(plain, 0.5), atol=0.01)  # nearly uniform: 0.5 either way
    # centred: the query's own tokens are identical, so centring them leaves nothing to match - uniform again;
    # a query whose cells differ like the stored ones reads each cell's own illumination
    query = (shared + parts).T.reshape(1, 3, 1, 2)
    _, centred = memory.read(query, None, 1024, (scale, scale), centred=True)
    weight = 1 / (1 + math.exp(-20.0))  # cosines +1 and -1 after centring, times the scale 10, in both stages
    assert float(centred[0, 0, 0, 0]) == pytest.approx(weight, abs=1e-6)
    assert float(centred[0, 0, 0, 1]) == pytest.approx(1 - weight, abs=1e-6)
    with pytest.raises(InputError, match="cosine match"):
        memory.read(query, None, 1024, centred=True)


def test_cosine_retrieval_gradients_reach_the_scale_float64():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c, d: topm_readout(a, b, c, None, chunk=2, scale=d), (q, k, v, s))


def test_cosine_retrieval_learns_its_scale_and_only_it_adds_state():
    plain = TAMI(ToyBackbone(), small_config())
    assert not any("retrieval" in name for name in plain.state_dict())
    model = TAMI(ToyBackbone(), small_config(retrieval="cosine", retrieval_scale=5.0))
    assert torch.allclose(model.icmem.retrieval_log_scale, torch.full((2,), math.log(5.0)))
    torch.nn.init.normal_(model.igfe.gamma, std=0.5)
    out, _ = model.forward_clip(torch.rand(1, 3, 3, 32, 32))
    out.mean().backward()
    assert model.icmem.retrieval_log_scale.grad.abs().min() > 0
    with pytest.raises(InputError, match="retrieval must be one of distance, cosine, centred"):
        small_config(retrieval="dot")
    with pytest.raises(InputError, match="retrieval_scale"):
        small_config(retrieval="cosine", retrieval_scale=0.0)


def test_ring_buffer_is_fifo_with_fixed_capacity():
    memory = KVMemory(3)
    for t in range(8):
        memory.write(torch.full((2, 4, 2, 2), float(t)), torch.full((2, 6, 2, 2), float(t)), torch.zeros(2, 1, 2, 2))
        assert len(memory) == min(t + 1, 3) <= memory.capacity
    assert memory.keys.shape == (2, 3, 4, 4)
    assert sorted(memory.keys[0, :, 0, 0].tolist()) == [5.0, 6.0, 7.0]
    pinned = KVMemory(2, pin_first=True)
    for t in range(6):
        pinned.write(torch.full((1, 4, 2, 2), float(t)), torch.zeros(1, 6, 2, 2), torch.zeros(1, 1, 2, 2))
    assert len(pinned) == 3 and pinned.ring_frames == 2
    assert sorted(pinned.keys[0, :, 0, 0].tolist()) == [0.0, 4.0, 5.0]
    with pytest.raises(InputError):
        pinned.write(torch.zeros(1, 4, 3, 3), torch.zeros(1, 6, 3, 3), torch.zeros(1, 1, 3, 3))


def test_memory_keeps_gradients_until_detached():
    memory = KVMemory(2)
    key = torch.randn(1, 4, 2, 2, requires_grad=True)
    memory.write(key, torch.randn(1, 6, 2, 2), torch.rand(1, 1, 2, 2))
    f_hp, prior = memory.read(torch.randn(1, 4, 2, 2), top_m=2, chunk=2)
    (f_hp.sum() + prior.sum()).backward()
    assert key.grad is not None and key.grad.abs().sum() > 0
    memory.detach()
    assert not memory.keys.requires_grad


def test_readout_of_illumination_is_a_convex_combination():
    memory = KVMemory(2)
    for _ in range(2):
        memory.write(torch.randn(1, 4, 3, 3), torch.randn(1, 6, 3, 3), torch.rand(1, 1, 3, 3))
    _, prior = memory.read(torch.randn(1, 4, 3, 3), top_m=4, chunk=5)
    assert prior.min() >= memory.illu.min() and prior.max() <= memory.illu.max()


def test_gated_update_uses_previous_hidden_state():
    hidden = torch.randn(1, 2, 3, 3)
    keep = torch.cat([torch.full((1, 2, 3, 3), 30.0), torch.full((1, 2, 3, 3), -30.0), torch.randn(1, 2, 3, 3)], 1)
    torch.testing.assert_close(gated_update(keep, hidden), hidden)
    replace = torch.cat([torch.randn(1, 2, 3, 3), torch.full((1, 2, 3, 3), 30.0), torch.zeros(1, 2, 3, 3)], 1)
    torch.testing.assert_close(gated_update(replace, hidden), torch.zeros_like(hidden))


def test_attention_bias_reference_values():
    decays = head_decays(4, 4.0)
    torch.testing.assert_close(decays, torch.tensor([-0.2877, -0.1335, -0.0645, -0.0317]), atol=1e-4, rtol=0)
    coords = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    prior = torch.tensor([[0.2, 0.7]])
    bias = attention_bias(coords, coords, prior, prior, decays, torch.ones(2), 200.0)
    phot = 200 * 0.5 * -torch.log(torch.tensor(1 - 0.5 + 1e-6))
    torch.testing.assert_close(bias[0, :, 0, 1], decays * (5.0 + phot), rtol=1e-5, atol=1e-5)
    assert torch.all(bias[0, :, 0, 0] == 0)


def test_igfe_is_chunk_invariant_and_zero_at_init():
    igfe = IGFE(16, 8, blocks=2, dim=16, pool=2, chunk=1024)
    z, cue, prior = torch.randn(2, 16, 12, 10), torch.randn(2, 8, 6, 5), torch.rand(2, 1, 6, 5)
    assert torch.equal(igfe(z, cue, prior), z)
    z_last = z.contiguous(memory_format=torch.channels_last)  # some backbones hand over channels-last features
    assert igfe(z_last, cue, prior).stride() == z_last.stride()
    torch.nn.init.normal_(igfe.gamma)
    full = igfe(z, cue, prior)
    igfe.chunk = 7
    torch.testing.assert_close(igfe(z, cue, prior), full, atol=1e-6, rtol=1e-6)


def test_token_cap_bounds_igfe_and_memory_grids():
    assert scaled_grid(240, 128, 0.25) == (60, 32)
    rows, cols = scaled_grid(480, 270, 0.25, 4096)
    assert rows * cols <= 4096 and abs(rows / cols - 480 / 270) < 0.05
    rows, cols = IGFE(8, 8, blocks=1, dim=8, pool=4, max_tokens=100).token_grid(240, 128)
    assert 80 <= rows * cols <= 100


def test_temperature_is_persisted_and_not_reset_by_training():
    model = TAMI(ToyBackbone(), small_config())
    temps = [k for k in model.adapter_state_dict() if k.endswith("attn.temperature")]
    assert len(temps) == model.config.igfe_blocks
    with torch.no_grad():
        for block in model.igfe.blocks:
            block.attn.temperature.fill_(0.7)
    model.train()
    model.forward_clip(torch.rand(1, 2, 3, 16, 16))
    assert all(torch.all(b.attn.temperature == 0.7) for b in model.igfe.blocks)
