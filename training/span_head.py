"""An exact, cheaper form of GLiNER's ``markerV0`` span head for inference and export.

Why: ``SpanMarkerV0`` scores every (start word, width) pair with
``out_project(relu(cat(start_rep[i], end_rep[j])))``, whose first Linear (2D -> 4D) runs once
per span: L words x max_width spans. A Linear over a concatenation is the sum of two Linears
over the halves, and ReLU acts element-wise on each half, so that first layer can run once per
word on each half and be added per span instead. Same weights, same outputs (up to float
rounding), ~2x fewer span-head FLOPs; ORT's profiler put 44% of the int8 model's time in this
head (training/RESULTS.md). Training keeps GLiNER's own module: this only replaces ``forward``
on a loaded model.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn


def _factored_forward(self: Any, h: torch.Tensor, span_idx: torch.Tensor) -> torch.Tensor:
    from gliner.modeling.span_rep import extract_elements

    _, act, drop, second = self.out_project
    b, _, d = h.size()
    start = self.out_start(torch.relu(self.project_start(h)))  # [B, L, 4D], once per word
    end = self.out_end(torch.relu(self.project_end(h)))
    spans = extract_elements(start, span_idx[:, :, 0]) + extract_elements(end, span_idx[:, :, 1])
    out = second(drop(act(spans)))
    return out.view(b, span_idx.size(1) // self.max_width, self.max_width, d)


def _factorable(module: nn.Module) -> bool:
    from gliner.modeling.span_rep import SpanMarkerV0

    if not isinstance(module, SpanMarkerV0) or not isinstance(module.out_project, nn.Sequential):
        return False
    layers = list(module.out_project)
    return (len(layers) == 4 and isinstance(layers[0], nn.Linear) and isinstance(layers[1], nn.ReLU)
            and isinstance(layers[2], nn.Dropout) and isinstance(layers[3], nn.Linear))


def factor_span_heads(model: nn.Module) -> int:
    """Switch every ``markerV0`` span head in ``model`` to the factored forward; returns how
    many were switched (0 for other span modes, which are left as they are)."""
    n = 0
    for module in list(model.modules()):
        if _factorable(module):
            first = module.out_project[0]
            d = first.in_features // 2
            # The halves as Linear modules of their own: plain weight initializers in an ONNX
            # export (so they are quantized), not slices of the original weight at run time.
            start, end = nn.Linear(d, first.out_features, bias=False), nn.Linear(d, first.out_features)
            with torch.no_grad():
                start.weight.copy_(first.weight[:, :d])
                end.weight.copy_(first.weight[:, d:])
                end.bias.copy_(first.bias)
            module.add_module("out_start", start.to(first.weight.device))
            module.add_module("out_end", end.to(first.weight.device))
            module.forward = types.MethodType(_factored_forward, module)
            n += 1
    return n
