"""Trained models cached by content hash: in memory, and on disk across restarts.

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

from ivr.nlu import classifier, text
from ivr.nlu.classifier import MODEL_VERSION, LinearRecognizer, canonical_examples

log = logging.getLogger(__name__)

_MEMORY_SLOTS = 64
_memory: OrderedDict[str, LinearRecognizer] = OrderedDict()
_lock = threading.Lock()


def cache_dir() -> Path | None:
    """Where trained models are kept on disk, or None when disabled."""
    raw = os.environ.get("IVR_CACHE_DIR")
    if raw is None:
        return Path.home() / ".cache" / "ivr" / "nlu"
    return Path(raw) / "nlu" if raw.strip() else None


def _code_digest() -> str:
    """Digest of the code that trains and applies models: any edit retrains cached ones."""
    digest = hashlib.sha256(str(MODEL_VERSION).encode())
    for module in (classifier, text):
        try:
            digest.update(Path(module.__file__ or "").read_bytes())
        except OSError:  # no source on disk (frozen app): MODEL_VERSION alone
            pass
    return digest.hexdigest()


_CODE = _code_digest()


def content_key(examples: Mapping[str, Sequence[str]]) -> str:
    """SHA-256 of the model code and the canonical examples."""
    payload = json.dumps([_CODE, canonical_examples(examples)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _load(path: Path) -> LinearRecognizer | None:
    try:
        with path.open("rb") as fh:
            model = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt or from an incompatible library version: retrain
        log.warning("ignoring unreadable cached intent model %s: %s", path, exc)
        return None
    return model if isinstance(model, LinearRecognizer) else None


def _save(path: Path, model: LinearRecognizer) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not cache intent model in %s: %s", path.parent, exc)


def cached_recognizer(examples: Mapping[str, Sequence[str]]) -> LinearRecognizer:
    """The recognizer for these examples: from memory, from disk, or freshly trained."""
    key = content_key(examples)
    with _lock:
        model = _memory.get(key)
        if model is not None:
            _memory.move_to_end(key)
            return model
    directory = cache_dir()
    path = directory / f"{key}.pkl" if directory else None
    model = _load(path) if path else None
    if model is None:
        model = LinearRecognizer(examples)
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
