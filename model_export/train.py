"""``train``: teacher-forced training of the attention decoder with early stopping on val CIDEr-D.

Every epoch ends with a checkpoint (``last.pt``; ``best.pt`` when val CIDEr-D
improves), a row in ``log.csv`` and a refreshed ``curves.png``. Shuffling and
dropout are seeded per epoch, so ``--resume`` continues exactly where an
interrupted run would have gone.

Several GPUs: ``torchrun --nproc_per_node=N -m model_export train ...`` wraps
the decoder in DistributedDataParallel; each rank trains on its share of every
epoch's batches, and rank 0 writes the files.
"""

from __future__ import annotations

import csv
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from desktop_app.captioning.decode import DecodeOptions
from model_export.data.captions import DataError
from model_export.data.prepare import PreparedData
from model_export.decoder import CaptionDecoder, DecoderConfig
from model_export.encoder import ENCODERS, GridEncoder
from model_export.evaluate import TorchStepModel, score_split

LOG_COLUMNS = ("epoch", "train_loss", "val_loss", "val_BLEU-4", "val_CIDEr-D", "lr", "seconds")


@dataclass
class TrainConfig:
    data: Path
    out: Path
    epochs: int = 20
    batch_size: int = 20  # photos per batch, each with all its captions
    lr: float = 5e-4
    # Architecture defaults come from the decoder's own config, so they are defined once.
    embed_dim: int = DecoderConfig.embed_dim
    hidden_dim: int = DecoderConfig.hidden_dim
    attention_dim: int = DecoderConfig.attention_dim
    memory_dim: int = DecoderConfig.memory_dim
    dropout: float = DecoderConfig.dropout
    alpha_c: float = 1.0
    grad_clip: float = 5.0
    patience: int = 4
    fine_tune_blocks: int = 0
    encoder_lr: float = 1e-4
    val_limit: int = 0
    max_length: int = 30
    seed: int = 1
    threads: int = 0
    device: str = "auto"
    resume: bool = False
    quiet: bool = False


def encode_captions(data: PreparedData, split: str, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (photo, caption) pairs of a split as padded token ids: rows, ids [P, T], lengths [P]."""
    rows, encoded = [], []
    for i in data.splits[split]:
        for caption in data.captions[data.images[i]]:
            ids = data.vocabulary.encode(caption)
            if len(ids) > max_length + 2:
                ids = ids[: max_length + 1] + [data.vocabulary.end_id]
            rows.append(i)
            encoded.append(ids)
    lengths = np.array([len(ids) for ids in encoded])
    tokens = np.full((len(encoded), lengths.max()), data.vocabulary.pad_id, dtype=np.int64)
    for n, ids in enumerate(encoded):
        tokens[n, : len(ids)] = ids
    return np.array(rows), tokens, lengths


class Trainer:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.device = self._pick_device()
        if self.distributed:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if config.threads:
            torch.set_num_threads(config.threads)
        self.data = PreparedData.load(config.data)
        self.fine_tune = config.fine_tune_blocks > 0
        self.features = None if self.fine_tune else np.asarray(self.data.features())
        feature_dim = 1280 if self.features is None else self.features.shape[2]
        self.decoder_config = DecoderConfig(
            vocab_size=len(self.data.vocabulary), feature_dim=feature_dim, memory_dim=config.memory_dim,
            embed_dim=config.embed_dim, hidden_dim=config.hidden_dim, attention_dim=config.attention_dim,
            dropout=config.dropout)
        torch.manual_seed(config.seed)
        self.decoder = CaptionDecoder(self.decoder_config).to(self.device)
        self.encoder = GridEncoder(self.data.encoder).to(self.device)
        groups = [{"params": self.decoder.parameters(), "lr": config.lr}]
        if self.fine_tune:
            self.encoder.set_trainable_blocks(config.fine_tune_blocks)
            groups.append({"params": [p for p in self.encoder.parameters() if p.requires_grad], "lr": config.encoder_lr})
        self.model = self.decoder
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.decoder, device_ids=ids)
        self.optimizer = torch.optim.Adam(groups)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", factor=0.5, patience=1)
        self.train_rows, self.train_tokens, self.train_lengths = encode_captions(self.data, "train", config.max_length)
        self.val_rows, self.val_tokens, self.val_lengths = encode_captions(self.data, "val", config.max_length)
        self._captions_by_photo: dict[int, np.ndarray] = {}
        for n, photo in enumerate(self.train_rows):
            self._captions_by_photo.setdefault(int(photo), []).append(n)
        self._captions_by_photo = {p: np.array(v) for p, v in self._captions_by_photo.items()}
        self.epoch, self.best, self.bad_epochs = 0, -1.0, 0

    def _pick_device(self) -> torch.device:
        wanted = self.config.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
        return torch.device(wanted)

    # -- batches -------------------------------------------------------------
    def _inputs(self, rows: np.ndarray) -> torch.Tensor:
        if self.features is not None:
            return torch.from_numpy(self.features[rows].astype(np.float32)).to(self.device)
        from desktop_app.photos.pixels import load_pixels

        spec = ENCODERS[self.data.encoder].preprocessing
        pixels = np.stack([load_pixels(self.data.image_dir / self.data.images[r], spec) for r in rows])
        return self.encoder(torch.from_numpy(pixels).to(self.device))

    def _loss(self, rows, tokens, lengths) -> torch.Tensor:
        order = np.argsort(-lengths, kind="stable")
        rows, tokens, lengths = rows[order], tokens[order], lengths[order]
        photos, photo_of = np.unique(rows, return_inverse=True)
        tokens = torch.from_numpy(tokens[:, : lengths.max()]).to(self.device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        with autocast:
            logits, alphas = self.model(self._inputs(photos), tokens, torch.from_numpy(lengths),
                                        torch.from_numpy(photo_of).to(self.device))
        targets = tokens[:, 1:]
        mask = targets != self.data.vocabulary.pad_id
        loss = F.cross_entropy(logits.float()[mask], targets[mask])
        # Doubly stochastic attention: every location should be looked at about once over the caption.
        loss = loss + self.config.alpha_c * ((1.0 - alphas.float().sum(dim=1)) ** 2).mean()
        return loss

    def train_epoch(self) -> float:
        cfg = self.config
        self.decoder.train()
        self.encoder.train(self.fine_tune)
        torch.manual_seed(cfg.seed * 1000 + self.epoch)  # dropout, reproducible on resume
        photos = np.random.default_rng(cfg.seed * 1000 + self.epoch).permutation(self.data.splits["train"])
        captions_of = self._captions_by_photo
        batches = [np.concatenate([captions_of[p] for p in photos[i:i + cfg.batch_size]])
                   for i in range(0, len(photos), cfg.batch_size)][self.rank::self.world]
        total, count = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="batch", disable=cfg.quiet or self.rank)
        for batch in bar:
            loss = self._loss(self.train_rows[batch], self.train_tokens[batch], self.train_lengths[batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], cfg.grad_clip)
            self.optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
            bar.set_postfix(loss=f"{total / count:.3f}")
        return total / max(count, 1)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.decoder.eval()
        self.encoder.eval()
        total, count = 0.0, 0
        first = np.unique(self.val_rows, return_index=True)[1]  # one caption per photo keeps this quick
        for start in range(0, len(first), 250):
            s = first[start:start + 250]
            total += self._loss(self.val_rows[s], self.val_tokens[s], self.val_lengths[s]).item() * len(s)
            count += len(s)
        features = None
        if self.fine_tune:
            val = self.data.splits["val"][: self.config.val_limit or None]
            grids = torch.cat([self._inputs(np.array(val[i:i + 64])).float().cpu() for i in range(0, len(val), 64)])
            features = np.zeros((len(self.data.images), *grids.shape[1:]), np.float32)
            features[val] = grids.numpy()
        scores, _, _ = score_split(TorchStepModel(self.decoder, self.device), self.data, "val",
                                   DecodeOptions(beam_size=1, max_length=self.config.max_length, no_repeat_ngram=0),
                                   metrics=("bleu", "cider"), limit=self.config.val_limit, features=features)
        return {"val_loss": total / count, "val_BLEU-4": scores["BLEU-4"], "val_CIDEr-D": scores["CIDEr-D"]}

    # -- checkpoints -----------------------------------------------------------
    def state(self, scores: dict) -> dict:
        return {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()},
            "decoder_config": self.decoder_config.to_dict(),
            "decoder": self.decoder.state_dict(),
            "encoder_name": self.data.encoder,
            "encoder": self.encoder.state_dict() if self.fine_tune else None,
            "vocabulary": self.data.vocabulary.words,
            "data_source": self.data.source,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "val_scores": scores,
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
        }

    def resume(self) -> None:
        path = self.config.out / "last.pt"
        if not path.is_file():
            raise DataError(f"{path}: nothing to resume")
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["vocabulary"] != self.data.vocabulary.words:
            raise DataError(f"{path}: trained with another vocabulary than {self.config.data}")
        self.decoder.load_state_dict(state["decoder"])
        if state.get("encoder") is not None:
            self.encoder.load_state_dict(state["encoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.bad_epochs = state["epoch"], state["best"], state["bad_epochs"]
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])

    def _log(self, row: dict) -> None:
        path = self.config.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: (round(v, 4) if isinstance(v, float) and k != "lr" else v) for k, v in row.items()})
        from model_export.figures import training_curves

        training_curves(path, self.config.out / "curves.png")

    def run(self) -> dict:
        cfg = self.config
        cfg.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            self.resume()
        scores: dict = {}
        while self.epoch < cfg.epochs and self.bad_epochs < cfg.patience:
            start = time.perf_counter()
            train_loss = self.train_epoch()
            scores = self.validate()
            self.scheduler.step(scores["val_CIDEr-D"])
            self.epoch += 1
            improved = scores["val_CIDEr-D"] > self.best
            self.best = max(self.best, scores["val_CIDEr-D"])
            self.bad_epochs = 0 if improved else self.bad_epochs + 1
            seconds = time.perf_counter() - start
            if self.rank == 0:
                state = self.state(scores)
                torch.save(state, cfg.out / "last.pt.tmp")
                os.replace(cfg.out / "last.pt.tmp", cfg.out / "last.pt")
                if improved:
                    torch.save(state, cfg.out / "best.pt")
                self._log({"epoch": self.epoch, "train_loss": train_loss, **scores,
                           "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(seconds, 1)})
                if not cfg.quiet:
                    print(f"epoch {self.epoch}: loss {train_loss:.3f}, val BLEU-4 {scores['val_BLEU-4']:.2f}, "
                          f"CIDEr-D {scores['val_CIDEr-D']:.2f}{' (best)' if improved else ''}, {seconds:.0f}s", flush=True)
        if self.bad_epochs >= cfg.patience and not cfg.quiet and self.rank == 0:
            print(f"early stop: no better val CIDEr-D for {cfg.patience} epochs (best {self.best:.2f})")
        if self.distributed:
            dist.destroy_process_group()
        return {"epoch": self.epoch, "best_val_CIDEr-D": self.best, **scores}


def train(config: TrainConfig) -> dict:
    config.data, config.out = Path(config.data), Path(config.out)
    return Trainer(config).run()
