"""Position bias (both modes), attention masking and translation equivariance."""

import math

import pytest
import torch
import torch.nn.functional as F

from refdense.models import PositionAwareSelfAttention, position_bias
from refdense.models.attention import position_bias_index


def spec_pat_bias(q: torch.Tensor, table: torch.Tensor, n: int) -> torch.Tensor:
    """PAT's bias (docs/METHOD.md, section 2): three cases, as loops (q (N, d), table (L, d), built for length n)."""
    length = table.shape[0]
    s = torch.zeros(q.shape[0], q.shape[0])
    for i in range(q.shape[0]):
        for j in range(q.shape[0]):
            if j <= i:
                s[i, j] = q[i] @ table[length - 1 - (i - j)]
            elif j >= i + 2:
                s[i, j] = q[i + 1] @ table[length - n + j - i - 2]
    return s


def music_transformer_skew(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The reference's construction (no causal mask): q @ last-N rows of E, left-pad, reshape, drop a row."""
    n = q.shape[-2]
    qe = q @ table[table.shape[0] - n :].T  # (..., N, N)
    padded = F.pad(qe, (1, 0))  # (..., N, N + 1)
    return padded.reshape(*qe.shape[:-2], n + 1, n)[..., 1:, :]


def test_pat_bias_matches_hand_computed_example():
    # L = N = 4, head dim 2; numbers chosen so that every entry is easy to check by hand.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    table = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])  # E[0..3]
    bias = position_bias(q[None, None], table, "pat")[0, 0]
    expected = torch.tensor(
        [
            # i=0: j=0 -> q0.E[3]=7 ; j=1 -> 0 ; j=2 -> q1.E[0]=2 ; j=3 -> q1.E[1]=4
            [7.0, 0.0, 2.0, 4.0],
            # i=1: j=0 -> q1.E[2]=6 ; j=1 -> q1.E[3]=8 ; j=2 -> 0 ; j=3 -> q2.E[0]=3
            [6.0, 8.0, 0.0, 3.0],
            # i=2: j=0 -> q2.E[1]=7 ; j=1 -> q2.E[2]=11 ; j=2 -> q2.E[3]=15 ; j=3 -> 0
            [7.0, 11.0, 15.0, 0.0],
            # i=3: j=0 -> q3.E[0]=0 ; j=1 -> q3.E[1]=2 ; j=2 -> q3.E[2]=4 ; j=3 -> q3.E[3]=6
            [0.0, 2.0, 4.0, 6.0],
        ]
    )
    torch.testing.assert_close(bias, expected)
    torch.testing.assert_close(bias, spec_pat_bias(q, table, n=4))


def test_pat_bias_equals_the_reference_skew_for_full_windows():
    torch.manual_seed(0)
    q, table = torch.randn(2, 3, 8, 5), torch.randn(8, 5)
    torch.testing.assert_close(position_bias(q, table, "pat"), music_transformer_skew(q, table))


def test_pat_bias_of_a_short_sequence_is_that_of_the_same_sequence_padded_to_max_len():
    torch.manual_seed(1)
    q, table = torch.randn(1, 2, 5, 4), torch.randn(8, 4)
    padded = torch.cat([q, torch.randn(1, 2, 3, 4)], dim=2)
    full = music_transformer_skew(padded, table)
    short = position_bias(q, table, "pat")
    torch.testing.assert_close(short, full[:, :, :5, :5])
    # the reference on the unpadded sequence differs (its third case shifts with N): the documented choice
    assert not torch.allclose(short, music_transformer_skew(q, table))
    torch.testing.assert_close(short[0, 0], spec_pat_bias(q[0, 0], table, n=8))


def test_relative_bias_depends_on_distance_only_and_clamps_long_distances():
    max_len, n = 4, 9
    table = torch.randn(2 * max_len - 1, 3)
    q = torch.randn(1, 1, 1, 3).expand(1, 1, n, 3)  # the same query everywhere
    bias = position_bias(q, table, "relative")[0, 0]
    for i in range(n):
        for j in range(n):
            distance = max(-(max_len - 1), min(max_len - 1, i - j))
            torch.testing.assert_close(bias[i, j], q[0, 0, 0] @ table[distance + max_len - 1])


def test_pat_mode_rejects_sequences_longer_than_max_len():
    with pytest.raises(ValueError, match=r"max_len=4 .*found 5"):
        position_bias_index(5, 4, "pat")
    with pytest.raises(ValueError, match="position must be one of"):
        position_bias_index(3, 4, "absolute")


def _attention(position: str) -> PositionAwareSelfAttention:
    torch.manual_seed(2)
    return PositionAwareSelfAttention(dim=8, heads=2, head_dim=4, max_len=16, position=position)


def test_attention_is_softmax_of_scores_plus_bias_over_sqrt_d_with_padded_keys_masked():
    attn = _attention("pat")
    x = torch.randn(1, 6, 8)
    mask = torch.tensor([[True, True, True, True, False, False]])
    weights, v = attn.attention(x, mask)
    q = attn.to_q(x).view(1, 6, 2, 4).transpose(1, 2)
    k = attn.to_kv(x)[..., :8].view(1, 6, 2, 4).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2) + position_bias(q, attn.position_table, "pat")) / math.sqrt(4)
    expected = scores[..., :4].softmax(-1)
    torch.testing.assert_close(weights[..., :4], expected)
    assert torch.all(weights[..., 4:] == 0)
    assert torch.isfinite(attn(x, mask)).all()


@pytest.mark.parametrize("position", ["relative", "pat"])
def test_attention_is_translation_equivariant(position):
    # relative: the bias depends on i - j only. pat (built for N = max_len): on i - j and the queries
    # i and i + 1, so moving a sequence behind masked junk changes nothing either.
    attn = _attention(position)
    x = torch.randn(1, 7, 8)
    shift = 5
    shifted = torch.cat([torch.randn(1, shift, 8) * 100, x], dim=1)
    mask_shifted = torch.arange(shift + 7).unsqueeze(0) >= shift
    alone = attn(x, torch.ones(1, 7, dtype=torch.bool))
    moved = attn(shifted, mask_shifted)[:, shift:]
    torch.testing.assert_close(moved, alone, atol=1e-5, rtol=1e-5)
    # without the mask the junk is attended to, and the outputs move
    assert not torch.allclose(attn(shifted, torch.ones_like(mask_shifted))[:, shift:], alone, atol=1e-3)


@pytest.mark.parametrize("position, max_len, lengths", [("pat", 8, range(1, 9)), ("relative", 5, range(1, 13))])
def test_skewed_bias_is_the_indexed_definition(position, max_len, lengths):
    # position_bias reads the entries by a pad and a strided view; position_bias_index says where
    # each entry comes from. Relative lengths past max_len exercise the clamped distances.
    torch.manual_seed(3)
    table = torch.randn(max_len if position == "pat" else 2 * max_len - 1, 4, dtype=torch.float64)
    for n in lengths:
        q = torch.randn(2, 3, n, 4, dtype=torch.float64)
        query, row, keep = position_bias_index(n, max_len, position)
        qe = q @ table.T
        expected = qe[:, :, query, row] * keep
        torch.testing.assert_close(position_bias(q, table, position), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("position, max_len, n", [("pat", 6, 6), ("relative", 4, 7)])
def test_skewed_bias_has_the_gradients_of_the_indexed_definition(position, max_len, n):
    torch.manual_seed(4)
    q = torch.randn(1, 2, n, 4, dtype=torch.float64, requires_grad=True)
    table = torch.randn(max_len if position == "pat" else 2 * max_len - 1, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 2, n, n, dtype=torch.float64)  # a loss that weighs every entry differently
    query, row, keep = position_bias_index(n, max_len, position)
    expected = ((q @ table.T)[:, :, query, row] * keep * weights).sum()
    found = (position_bias(q, table, position) * weights).sum()
    for a, b in zip(torch.autograd.grad(found, (q, table)), torch.autograd.grad(expected, (q, table))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("position", ["pat", "relative"])
def test_attention_forward_is_the_explicit_formula_values_and_gradients(position):
    attn = _attention(position).double()
    x = torch.randn(2, 7, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    out = attn(x, mask)
    weights, v = attn.attention(x, mask)
    expected = attn.to_out((weights @ v).transpose(1, 2).flatten(2))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    parameters = [x, *attn.parameters()]
    for a, b in zip(torch.autograd.grad(out.sum(), parameters), torch.autograd.grad(expected.sum(), parameters)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.perf
def test_inference_runs_the_fused_cpu_kernel():
    attn = _attention("pat").eval()
    x, mask = torch.randn(2, 16, 8), torch.ones(2, 16, dtype=torch.bool)
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        attn(x, mask)
    assert any("flash_attention" in event.key for event in profile.key_averages())
