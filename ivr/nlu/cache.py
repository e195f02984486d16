"""Trained models cached by content hash: in memory, and on disk across restarts.

The key covers the backend (``linear`` or ``embeddings``), the examples and the
source of the code that trains and applies the model.

The disk cache lives in ``$IVR_CACHE_DIR/nlu`` (default ``~/.cache/ivr/nlu``);
set ``IVR_CACHE_DIR`` to an empty string to keep models in memory only. Files
are pickles, so the directory must be writable by the IVR's user only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence

from ivr.nlu import (
    NLUError,
    classifier,
    embeddings,
    neighbours,
    piecenet,
    student,
    text,
    vectors,
)
from ivr.nlu.classifier import MODEL_VERSION, LinearRecognizer, canonical_examples

log = logging.getLogger(__name__)

BACKENDS = ("linear", "embeddings")
"""Model families behind :func:`ivr.nlu.build_recognizer`; ``linear`` is the default."""

BACKEND_ENV = "IVR_NLU_BACKEND"

Recognizer = LinearRecognizer | embeddings.EmbeddingRecognizer

_MEMORY_SLOTS = 64
_memory: OrderedDict[str, Recognizer] = OrderedDict()
_lock = threading.Lock()
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning(message)


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: ``backend``, else ``$IVR_NLU_BACKEND``, else ``linear``.

    ``embeddings`` without its extra installed falls back to ``linear`` with a
    logged warning. An unknown name given as ``backend`` raises :class:`NLUError`;
    an unknown ``$IVR_NLU_BACKEND`` is logged and ignored.
    """
    if backend is not None:
        name = backend.strip().lower()
        if name not in BACKENDS:
            raise NLUError(f"unknown NLU backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    else:
        raw = os.environ.get(BACKEND_ENV, "")
        name = raw.strip().lower() or "linear"
        if name not in BACKENDS:
            _warn_once(
                f"{BACKEND_ENV}={raw!r} is not one of {', '.join(BACKENDS)}: "
                "using the linear intent model"
            )
            name = "linear"
    if name == "embeddings":
        reason = embeddings.missing()
        if reason is not None:
            _warn_once(
                f"NLU backend 'embeddings' unavailable, using the linear intent model: {reason}"
            )
            name = "linear"
    return name


def train(examples: Mapping[str, Sequence[str]], backend: str = "linear") -> Recognizer:
    """Train a fresh recognizer of a resolved backend (no cache)."""
    if backend == "embeddings":
        return embeddings.EmbeddingRecognizer(examples)
    return LinearRecognizer(examples)


def _model_class(backend: str) -> type:
    return embeddings.EmbeddingRecognizer if backend == "embeddings" else LinearRecognizer


def cache_dir() -> Path | None:
    """Where trained models are kept on disk, or None when disabled."""
    raw = os.environ.get("IVR_CACHE_DIR")
    if raw is None:
        return Path.home() / ".cache" / "ivr" / "nlu"
    return Path(raw) / "nlu" if raw.strip() else None


def _code_digest() -> str:
    """Digest of the code that trains and applies models: any edit retrains cached ones."""
    digest = hashlib.sha256(str(MODEL_VERSION).encode())
    modules = (classifier, text, embeddings, vectors, piecenet, student, neighbours)
    files = [Path(m.__file__ or "") for m in modules]
    for path in files + [vectors.VECTORS_FILE, student.STUDENT_FILE]:
        try:
            digest.update(path.read_bytes())
        except OSError:  # no source on disk (frozen app): MODEL_VERSION alone
            pass
    return digest.hexdigest()


_CODE = _code_digest()


def content_key(examples: Mapping[str, Sequence[str]], backend: str = "linear") -> str:
    """SHA-256 of the model code, the backend and the canonical examples."""
    payload = json.dumps(
        [_CODE, canonical_examples(examples)] + ([] if backend == "linear" else [backend]),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _load(path: Path, cls: type) -> Recognizer | None:
    try:
        with path.open("rb") as fh:
            model = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt or from an incompatible library version: retrain
        log.warning("ignoring unreadable cached intent model %s: %s", path, exc)
        return None
    if not isinstance(model, (LinearRecognizer, embeddings.EmbeddingRecognizer)):
        return None
    return model if type(model) is cls else None


def _save(path: Path, model: Recognizer) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not cache intent model in %s: %s", path.parent, exc)


def cached_recognizer(
    examples: Mapping[str, Sequence[str]], backend: str | None = None
) -> Recognizer:
    """The recognizer for these examples: from memory, from disk, or freshly trained."""
    backend = resolve_backend(backend)
    key = content_key(examples, backend)
    with _lock:
        model = _memory.get(key)
        if model is not None:
            _memory.move_to_end(key)
            return model
    directory = cache_dir()
    path = directory / f"{key}.pkl" if directory else None
    model = _load(path, _model_class(backend)) if path else None
    if model is None:
        model = train(examples, backend)
        if path:
            _save(path, model)
    with _lock:
        _memory[key] = model
        while len(_memory) > _MEMORY_SLOTS:
            _memory.popitem(last=False)
    return model


def clear_memory() -> None:
    """Forget in-memory models (tests, or after a flow reload frees many)."""
    with _lock:
        _memory.clear()
