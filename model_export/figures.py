"""Figures for people: training curves and per-word attention maps (the Show-Attend-Tell picture)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def training_curves(log_csv: Path, out_png: Path) -> Path:
    with open(log_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(r["epoch"]) for r in rows]
    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [float(r["train_loss"]) for r in rows], "o-", label="train")
    loss_ax.plot(epochs, [float(r["val_loss"]) for r in rows], "o-", label="val")
    loss_ax.set(xlabel="epoch", ylabel="loss (cross-entropy + attention reg.)", title="Loss")
    loss_ax.legend()
    score_ax.plot(epochs, [float(r["val_BLEU-4"]) for r in rows], "o-", label="BLEU-4")
    score_ax.plot(epochs, [float(r["val_CIDEr-D"]) for r in rows], "o-", label="CIDEr-D")
    score_ax.set(xlabel="epoch", ylabel="score (x100)", title="Validation (greedy)")
    score_ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def scst_curves(log_csv: Path, out_png: Path) -> Path:
    """Self-critical training: mean sampled reward per logged interval, and val scores at each check."""
    with open(log_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    trained = [r for r in rows if r["reward"]]
    checked = [r for r in rows if r["val_CIDEr-D"]]
    fig, (reward_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4))
    reward_ax.plot([int(r["step"]) for r in trained], [float(r["reward"]) for r in trained], "o-")
    reward_ax.set(xlabel="step", ylabel="CIDEr-D of sampled captions (x1)", title="Training reward")
    score_ax.plot([int(r["step"]) for r in checked], [float(r["val_BLEU-4"]) for r in checked], "o-", label="BLEU-4")
    score_ax.plot([int(r["step"]) for r in checked], [float(r["val_CIDEr-D"]) for r in checked], "o-", label="CIDEr-D")
    score_ax.set(xlabel="step", ylabel="score (x100)", title="Validation")
    score_ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def attention_figure(photo: Path, words: list[str], attention: np.ndarray, out_png: Path) -> Path:
    """The photo once per word, with where the model looked for that word as a heat-map."""
    image = Image.open(photo).convert("RGB")
    side = int(round(math.sqrt(attention.shape[1]))) if len(attention) else 1
    panels = len(words) + 1
    cols = min(panels, 5)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("photo")
    for n, word in enumerate(words):
        ax = axes.flat[n + 1]
        heat = Image.fromarray((attention[n].reshape(side, side) / attention[n].max() * 255).astype(np.uint8))
        ax.imshow(image)
        ax.imshow(np.asarray(heat.resize(image.size, Image.Resampling.BICUBIC)), cmap="jet", alpha=0.5)
        ax.set_title(word)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
