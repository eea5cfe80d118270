"""Caption scores from pycocoevalcap (the coco-caption code every paper reports).

Not re-implemented here: BLEU-1..4, METEOR (Java), ROUGE-L and CIDEr-D all come
from pycocoevalcap, after its PTB tokenizer (Java) on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ALL_METRICS = ("bleu", "meteor", "rouge", "cider")


def score_captions(references: Mapping[int, Sequence[str]], hypotheses: Mapping[int, str],
                   metrics: Sequence[str] = ALL_METRICS) -> dict[str, float]:
    """Corpus scores (x100, as papers print them) of one hypothesis per image against its references."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if set(references) != set(hypotheses):
        raise ValueError("references and hypotheses must cover the same images")
    tokenizer = PTBTokenizer()
    refs = tokenizer.tokenize({i: [{"caption": c} for c in caps] for i, caps in references.items()})
    hyps = tokenizer.tokenize({i: [{"caption": h or "a"}] for i, h in hypotheses.items()})
    scores: dict[str, float] = {}
    for name in metrics:
        if name == "bleu":
            from pycocoevalcap.bleu.bleu import Bleu

            values, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
            scores.update({f"BLEU-{n + 1}": v * 100 for n, v in enumerate(values)})
        elif name == "meteor":
            from pycocoevalcap.meteor.meteor import Meteor

            scorer = Meteor()
            scores["METEOR"] = scorer.compute_score(refs, hyps)[0] * 100
            _close_meteor(scorer)
        elif name == "rouge":
            from pycocoevalcap.rouge.rouge import Rouge

            scores["ROUGE-L"] = Rouge().compute_score(refs, hyps)[0] * 100
        elif name == "cider":
            from pycocoevalcap.cider.cider import Cider  # coco-caption's Cider is CIDEr-D

            scores["CIDEr-D"] = Cider().compute_score(refs, hyps)[0] * 100
        else:
            raise ValueError(f"unknown metric {name!r}")
    return scores


def _close_meteor(scorer) -> None:
    """Stop METEOR's Java process now rather than at interpreter exit."""
    with scorer.lock:
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
