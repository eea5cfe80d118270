"""``scst``: self-critical sequence training, fine-tuning a cross-entropy model for CIDEr-D.

Rennie et al. 2017 with the baseline of Luo 2020 ("A Better Variant of
Self-Critical Sequence Training"): for every photo k captions are sampled from
the model, each is rewarded with its CIDEr-D against the photo's training
references, and the baseline of a sample is the mean reward of the other k-1
(no greedy pass). Loss per token: -(reward - baseline) * log p(token).

Runs on the cached encoder features. Sampling uses the decoder in eval mode (no
dropout), so the policy trained is the one the app decodes with. The photo order
and each step's sampling noise follow from the seed and the step number, so
``--resume`` (from ``last.pt``, written atomically every ``--checkpoint-every``
steps) continues exactly. Validation (greedy or beam CIDEr-D on val, every
``--eval-every`` steps) keeps ``best.pt`` and stops after ``--patience`` checks
without improvement. ``best.pt``/``last.pt`` are ordinary checkpoints: ``evaluate``
and ``export`` take them.

``--extra-data`` adds the train split of a second prepared folder (COCO's
``extra.txt``) to the training photos and to the reward's document frequencies;
the vocabulary stays the checkpoint's, so the extra references' unknown words
only make those references harder to match. Validation stays on ``--data``'s val split.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from desktop_app.bundle.vocabulary import tokenize
from desktop_app.captioning.decode import DecodeOptions
from model_export.checkpoint import load_trained
from model_export.cider import CiderD
from model_export.data.captions import DataError
from model_export.data.prepare import PreparedData
from model_export.decoder import CaptionDecoder
from model_export.evaluate import TorchStepModel, score_split

VAL_MAX_LENGTH = 30
LOG_COLUMNS = ("step", "epoch", "reward", "loss", "val_BLEU-4", "val_CIDEr-D", "lr", "seconds")


@dataclass
class ScstConfig:
    checkpoint: Path  # the cross-entropy model to start from (ignored on --resume)
    data: Path
    out: Path
    samples: int = 5  # captions sampled per photo; each one's baseline is the mean of the others
    batch_size: int = 10  # photos per step
    lr: float = 5e-5
    lr_decay: float = 1.0  # the learning rate is lr * lr_decay ** (step // lr_decay_every)
    lr_decay_every: int = 0  # steps between decays (0 = constant)
    max_length: int = 16  # words per sampled caption
    grad_clip: float = 1.0
    max_steps: int = 6000
    checkpoint_every: int = 50
    eval_every: int = 200  # a multiple of checkpoint_every
    val_limit: int = 0  # val photos scored per check (0 = all)
    val_beam: int = 1
    patience: int = 4  # checks without a better val CIDEr-D before stopping
    extra_data: Path | None = None  # another prepared folder whose train split joins the training photos
    extra_repeat: int = 1  # times each extra photo comes up per epoch
    seed: int = 1
    threads: int = 0
    resume: bool = False
    quiet: bool = False


def sample_captions(decoder: CaptionDecoder, features: torch.Tensor, samples: int, max_length: int,
                    start_id: int, end_id: int, suppress: tuple[int, ...],
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample ``samples`` captions per photo.

    Returns tokens [B*k, T] (photo-major; <end> included, then <pad> = 0), the
    log-probability of each chosen token [B*k, T] (with gradient) and the mask of
    real tokens [B*k, T].
    """
    memory, keys, h, c = decoder.init_state(features)
    memory, keys, h, c = (x.repeat_interleave(samples, dim=0) for x in (memory, keys, h, c))
    rows = memory.shape[0]
    tokens = torch.full((rows,), start_id, dtype=torch.long)
    finished = torch.zeros(rows, dtype=torch.bool)
    chosen, log_probs, masks = [], [], []
    banned = torch.tensor(suppress, dtype=torch.long)
    for _ in range(max_length + 1):  # words, then <end>
        logits, h, c, _ = decoder.step(tokens, h, c, memory, keys)
        logits = logits.float().index_fill(1, banned, float("-inf"))
        logp = torch.log_softmax(logits, dim=1)
        with torch.no_grad():
            tokens = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
        tokens = torch.where(finished, torch.zeros_like(tokens), tokens)
        masks.append(~finished)
        chosen.append(tokens)
        # finished rows emit <pad>, a banned token (log p = -inf): zero them rather than multiply -inf by 0
        log_probs.append(logp.gather(1, tokens.unsqueeze(1)).squeeze(1).masked_fill(finished, 0.0))
        finished = finished | (tokens == end_id)
        if bool(finished.all()):
            break
    return torch.stack(chosen, 1), torch.stack(log_probs, 1), torch.stack(masks, 1)


def self_critical_loss(log_probs: torch.Tensor, mask: torch.Tensor, rewards: torch.Tensor,
                       samples: int) -> torch.Tensor:
    """Policy gradient with the mean of the other samples of the same photo as baseline, per token."""
    grouped = rewards.view(-1, samples)
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (samples - 1)
    advantage = (grouped - baseline).reshape(-1, 1)
    mask = mask.float()
    return -(advantage * log_probs * mask).sum() / mask.sum()


class ScstTrainer:
    def __init__(self, config: ScstConfig):
        if config.samples < 2:
            raise DataError("--samples must be at least 2 (the baseline is the mean of the other samples)")
        if config.eval_every % config.checkpoint_every:
            raise DataError("--eval-every must be a multiple of --checkpoint-every")
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.data = PreparedData.load(config.data)
        extra = PreparedData.load(config.extra_data) if config.extra_data else None
        if extra is not None and extra.encoder != self.data.encoder:
            raise DataError(f"{config.extra_data}: features of {extra.encoder}, {config.data} has {self.data.encoder}")
        if config.extra_repeat < 1:
            raise DataError("--extra-repeat must be at least 1")
        source = config.out / "last.pt" if config.resume else config.checkpoint
        model = load_trained(source)
        if model.vocabulary.words != self.data.vocabulary.words:
            raise DataError(f"{source}: trained with another vocabulary than {config.data}")
        self.decoder, self.start_meta = model.decoder, model.meta
        self.encoder_name, self.vocabulary = model.encoder.name, model.vocabulary
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=config.lr)
        # Training photos from each prepared folder (the extra one's train split only: never its test split).
        self.sources = [(self.data, np.array(self.data.splits["train"]))]
        if extra is not None:
            self.sources.append((extra, np.array(extra.splits["train"])))
        self.features = [np.asarray(data.features()) for data, _ in self.sources]
        self.photo_source = np.concatenate([np.full(len(ids), n) for n, (_, ids) in enumerate(self.sources)])
        self.photo_index = np.concatenate([ids for _, ids in self.sources])
        # Positions an epoch draws from: every photo once, the extra folder's ``extra_repeat`` times.
        self.pool = np.concatenate([np.arange(len(self.photo_index))]
                                   + [np.flatnonzero(self.photo_source == 1)] * (config.extra_repeat - 1))
        self.cider = CiderD([[tokenize(c) for c in data.captions[data.images[i]]]
                             for data, ids in self.sources for i in ids])
        self.step, self.best, self.bad_checks = 0, -1.0, 0
        self.origin = str(config.checkpoint)
        if config.resume:
            self._resume(source)

    # -- one step ----------------------------------------------------------------
    def batch_of(self, step: int) -> np.ndarray:
        """Training photos (positions in ``photo_index``) for a step: a fresh seeded permutation every epoch."""
        per_epoch = len(self.pool) // self.config.batch_size
        epoch, k = divmod(step, per_epoch)
        order = self.pool[np.random.default_rng(self.config.seed * 1000 + epoch).permutation(len(self.pool))]
        return order[k * self.config.batch_size:(k + 1) * self.config.batch_size]

    def data_source(self) -> str:
        """What the model learnt from, for the bundle's manifest and model card."""
        cfg, parts = self.config, [self.data.source]
        if len(self.sources) > 1:
            extra = self.sources[1][0]
            parts.append(f"{extra.source}: train split only" + (f", x{cfg.extra_repeat}" if cfg.extra_repeat > 1 else ""))
        return f"{' + '.join(parts)}; self-critical fine-tuning (CIDEr-D) of {self.origin}"

    def lr_at(self, step: int) -> float:
        cfg = self.config
        return cfg.lr * cfg.lr_decay ** (step // cfg.lr_decay_every) if cfg.lr_decay_every else cfg.lr

    def features_of(self, positions: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.features[self.photo_source[p]][self.photo_index[p]]
                                          for p in positions]).astype(np.float32))

    def train_step(self) -> tuple[float, float]:
        cfg, vocab = self.config, self.vocabulary
        self.decoder.eval()
        positions = self.batch_of(self.step)
        features = self.features_of(positions)
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
        tokens, log_probs, mask = sample_captions(self.decoder, features, cfg.samples, cfg.max_length,
                                                  vocab.start_id, vocab.end_id, vocab.never_generated, generator)
        words = [vocab.decode(row) for row in tokens.tolist()]
        rewards = torch.from_numpy(self.cider.score(words, np.repeat(positions, cfg.samples))).float()
        loss = self_critical_loss(log_probs, mask, rewards, cfg.samples)
        for group in self.optimizer.param_groups:  # from the step number, so --resume (and a new schedule) applies
            group["lr"] = self.lr_at(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.decoder.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        return float(rewards.mean()), loss.item()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.decoder.eval()
        # 30 words, as train.py's check: the start's score equals the cross-entropy run's best val CIDEr-D
        options = DecodeOptions(beam_size=self.config.val_beam, max_length=VAL_MAX_LENGTH, no_repeat_ngram=0)
        scores, _, _ = score_split(TorchStepModel(self.decoder), self.data, "val", options,
                                   metrics=("bleu", "cider"), limit=self.config.val_limit)
        return {"val_BLEU-4": scores["BLEU-4"], "val_CIDEr-D": scores["CIDEr-D"]}

    # -- checkpoints -------------------------------------------------------------
    def state(self, scores: dict) -> dict:
        """A checkpoint ``load_trained`` reads (so evaluate/export take it) plus what resuming needs."""
        return {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()},
            "decoder_config": self.decoder.config.to_dict(),
            "decoder": self.decoder.state_dict(),
            "encoder_name": self.encoder_name,
            "encoder": None,
            "vocabulary": self.vocabulary.words,
            "data_source": self.data_source(),
            "epoch": round(self.step * self.config.batch_size / len(self.pool), 3),
            "val_scores": scores,
            "scst": {"step": self.step, "best": self.best, "bad_checks": self.bad_checks, "origin": self.origin},
            "optimizer": self.optimizer.state_dict(),
        }

    def _save(self, state: dict, name: str) -> None:
        tmp = self.config.out / f"{name}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.config.out / name)

    def _resume(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if "scst" not in state:
            raise DataError(f"{path}: not a self-critical training checkpoint")
        self.optimizer.load_state_dict(state["optimizer"])
        s = state["scst"]
        self.step, self.best, self.bad_checks, self.origin = s["step"], s["best"], s["bad_checks"], s["origin"]

    def _log(self, row: dict) -> None:
        path = self.config.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: (round(v, 4) if isinstance(v, float) and k != "lr" else v) for k, v in row.items()})
        from model_export.figures import scst_curves

        scst_curves(path, self.config.out / "curves.png")

    def run(self) -> dict:
        cfg = self.config
        cfg.out.mkdir(parents=True, exist_ok=True)
        scores: dict = {}
        if self.step == 0:  # the starting point is the first "best"
            start = time.perf_counter()
            scores = self.validate()
            self.best = scores["val_CIDEr-D"]
            self._save(self.state(scores), "best.pt")
            self._save(self.state(scores), "last.pt")
            self._log({"step": 0, "epoch": 0.0, "lr": cfg.lr, "seconds": round(time.perf_counter() - start, 1),
                       **scores})
            self._say(f"step 0: val CIDEr-D {self.best:.2f} (start)")
        while self.step < cfg.max_steps and self.bad_checks < cfg.patience:
            start = time.perf_counter()
            rewards, losses = [], []
            for _ in range(cfg.checkpoint_every):
                reward, loss = self.train_step()
                rewards.append(reward)
                losses.append(loss)
                if self.step >= cfg.max_steps:
                    break
            row = {"step": self.step, "epoch": round(self.step * cfg.batch_size / len(self.pool), 3),
                   "reward": float(np.mean(rewards)), "loss": float(np.mean(losses)),
                   "lr": self.lr_at(self.step - 1)}
            scores = {}
            if self.step % cfg.eval_every == 0 or self.step >= cfg.max_steps:
                scores = self.validate()
                improved = scores["val_CIDEr-D"] > self.best
                self.best = max(self.best, scores["val_CIDEr-D"])
                self.bad_checks = 0 if improved else self.bad_checks + 1
                if improved:
                    self._save(self.state(scores), "best.pt")
            self._save(self.state(scores), "last.pt")
            row["seconds"] = round(time.perf_counter() - start, 1)
            self._log({**row, **scores})
            val = f", val CIDEr-D {scores['val_CIDEr-D']:.2f}" if scores else ""
            self._say(f"step {self.step}: reward {row['reward']:.3f}, loss {row['loss']:.4f}{val}, {row['seconds']:.0f}s")
        if self.bad_checks >= cfg.patience:
            self._say(f"early stop: no better val CIDEr-D for {cfg.patience} checks (best {self.best:.2f})")
        return {"step": self.step, "best_val_CIDEr-D": self.best, **scores}

    def _say(self, text: str) -> None:
        if not self.config.quiet:
            print(text, flush=True)


def scst(config: ScstConfig) -> dict:
    config.checkpoint, config.data, config.out = Path(config.checkpoint), Path(config.data), Path(config.out)
    config.extra_data = Path(config.extra_data) if config.extra_data else None
    return ScstTrainer(config).run()
