"""The spaCy trainer's two reproducibility pieces: weight averaging (what the epoch selector
scores and what is saved must be the averaged weights when ``[spacy] averages = true``, the live
weights otherwise) and the seed (one seed, one model)."""

from __future__ import annotations

import numpy as np

from common.spans import LABEL
from training.config import SpacyOptions
from training.spacy_parts import blank_ner
from training.spacy_trainer import _examples, _optimizer, _weights


def _row(text: str, *names: str) -> dict:
    return {"text": text, "entities": [
        {"start": text.index(n), "end": text.index(n) + len(n), "label": LABEL, "text": n}
        for n in names]}


ROWS = [_row("Mizuho Maintains Buy on Autodesk", "Mizuho", "Autodesk"),
        _row("UBS Downgrades Agilent Technologies", "UBS", "Agilent Technologies"),
        _row("Stocks Fall As Oil Slides")]
TINY = {"start": "blank", "width": 16, "depth": 1, "embed_rows": [200, 50, 50, 50]}


def _trained(averages: bool):
    o = SpacyOptions(**TINY, averages=averages)
    nlp = blank_ner(o)
    nlp.get_pipe("ner").add_label(LABEL)
    examples, dropped = _examples(nlp, ROWS)
    assert dropped == 0
    opt = nlp.initialize(lambda: examples, sgd=_optimizer(nlp, o))
    for _ in range(5):
        nlp.update(examples, sgd=opt, drop=0.0)
    return nlp, opt


def _param(nlp, key):
    node_id, name = key
    node = next(n for n in nlp.get_pipe("ner").model.walk() if n.id == node_id)
    return node.get_param(name).copy()


def test_averaged_weights_are_used_inside_the_context_and_restored_after():
    nlp, opt = _trained(averages=True)
    assert opt.averages, "the optimizer keeps no averages"
    # a parameter the updates moved, so live and averaged weights differ
    key = next(k for k, avg in opt.averages.items() if not np.allclose(_param(nlp, k), avg))
    live = _param(nlp, key)
    with _weights(nlp, opt):
        assert np.allclose(_param(nlp, key), opt.averages[key])
    assert np.allclose(_param(nlp, key), live)


def test_without_averages_the_live_weights_are_used():
    nlp, opt = _trained(averages=False)
    assert not opt.averages
    before = {n.id: {p: n.get_param(p).copy() for p in n.param_names if n.has_param(p)}
              for n in nlp.get_pipe("ner").model.walk()}
    with _weights(nlp, opt):
        for n in nlp.get_pipe("ner").model.walk():
            for p, v in before[n.id].items():
                assert np.array_equal(n.get_param(p), v)
    # the configured optimizer is spaCy's own (Adam, L2 0.01, grad clip 1.0), not thinc's bare one
    assert opt.L2 == nlp.config["training"]["optimizer"]["L2"]


def test_one_seed_gives_one_model_and_another_seed_another(tmp_path):
    from training.config import TrainConfig
    from training.spacy_parts import PIPELINE_DIR
    from training.spacy_trainer import train_spacy

    def weights(seed: int, name: str) -> bytes:
        cfg = TrainConfig(kind="spacy", max_train=40, epochs=1, seed=seed, valid=None,
                          output=str(tmp_path / name), spacy={**TINY, "averages": True})
        train_spacy(cfg)
        return (tmp_path / name / PIPELINE_DIR / "ner" / "model").read_bytes()

    assert weights(3, "a") == weights(3, "b")
    assert weights(3, "a") != weights(4, "c")
