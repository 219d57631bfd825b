"""The factored span head computes what GLiNER's markerV0 head computes."""

from __future__ import annotations

import torch

from training.config import TrainConfig


def test_factored_span_head_matches_gliner_markerV0():
    from gliner.modeling.span_rep import SpanMarkerV0

    from training.gliner_trainer import build_model
    from training.span_head import factor_span_heads

    model = build_model(TrainConfig(kind="gliner", max_width=5))
    model.eval()
    heads = [m for m in model.modules() if isinstance(m, SpanMarkerV0)]
    assert len(heads) == 1
    head = heads[0]
    torch.manual_seed(0)
    for p in head.parameters():  # non-trivial weights, not the fresh init
        p.data.normal_(0, 0.05)
    b, words, d, w = 3, 7, head.project_start[0].in_features, head.max_width
    h = torch.randn(b, words, d)
    starts = torch.arange(words).repeat_interleave(w)
    ends = (starts + torch.arange(w).repeat(words)).clamp(max=words - 1)
    span_idx = torch.stack([starts, ends], -1).unsqueeze(0).expand(b, -1, -1).contiguous()
    with torch.inference_mode():
        before = head(h, span_idx)
        assert factor_span_heads(model) == 1
        after = head(h, span_idx)
    assert after.shape == before.shape == (b, words, w, d)
    assert torch.allclose(after, before, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(after[0, 0, 0], after[0, 1, 0])  # spans really differ
