"""The sentence-embedding model: all-MiniLM-L6-v2, dynamically quantised int8 ONNX, on the CPU.

The model files ship in digest/rank/model/ (see its README: licence, how it is built, checks); their
sha256 is checked at load. Nothing is downloaded. Texts are tokenised with the model's own
`tokenizer.json` (truncated to 256 word pieces, as the model was trained), mean-pooled over the
attention mask and normalised, so a dot product is a cosine.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_FILES = {
    "model.onnx": "a61ea183e4540f59511208112bd903cef7e7b2a5a1e4f96910963c0817afa648",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
# Stored embeddings carry this name: another model (or file) means embedding again.
MODEL_NAME = "all-MiniLM-L6-v2-int8-" + MODEL_FILES["model.onnx"][:12]
DIMENSION = 384
MAX_TOKENS = 256
THREADS = 2  # the machine is shared; more threads gain little on a model this small
# Texts of similar length are run together up to this many word pieces: a paper (~250) runs
# alone, which measured fastest and smallest here (77 papers: 1.3 s and 146 MB peak against
# 1.5 s and 166 MB at 512, 2.1 s and 371 MB at 4,096); short profile texts run dozens at a time.
BATCH_TOKENS = 256


class EmbeddingModel(Protocol):
    """The embedding model as the ranking uses it: in this process (`Embedder`) or in a process
    of its own (embed_process.EmbedderProcess, what a run uses)."""

    name: str  # stored with each vector: another model means embedding again

    def ready(self) -> None:
        """Wait until the model can embed. Raises ModelUnavailable (the run ranks by keywords)."""

    def prefetch(self, texts: Sequence[str]) -> None:
        """Start on these texts now (or not): the next `embed` of the same texts returns their
        vectors; the caller does other work meanwhile."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors, (len(texts), DIMENSION). Raises what the runtime raises."""
        ...

    def close(self) -> None:
        """Free the model (and its process)."""


class ModelUnavailable(Exception):
    """The model files are missing, altered, or the runtime cannot load them."""


class Embedder:
    """The model in this process: texts -> normalised float32 vectors (n, 384). Loading it
    takes about a second and 80 MB; a run uses it in a process of its own (embed_process)."""

    name = MODEL_NAME

    def __init__(self, model_dir: Path = MODEL_DIR) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise ModelUnavailable(f"cannot import the model runtime: {exc}") from None
        for name, digest in MODEL_FILES.items():
            path = model_dir / name
            try:
                actual = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                raise ModelUnavailable(f"cannot read {path}: {exc.strerror}") from None
            if actual != digest:
                raise ModelUnavailable(f"{path} has sha256 {actual}, expected {digest}")
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = THREADS
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.enable_cpu_mem_arena = False
            self._session = ort.InferenceSession(
                str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelUnavailable(f"cannot load the model: {exc}") from None
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}

    def ready(self) -> None:
        """Loaded already (the constructor raises ModelUnavailable)."""

    def prefetch(self, texts: Sequence[str]) -> None:
        """Nothing to start ahead in this process: `embed` does the work."""

    def close(self) -> None:
        """Nothing held beyond the object itself."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Similar lengths together: less padding, less work.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            end = start + 1  # sorted by length: the last of a chunk is its widest
            while end < len(order) and (end - start + 1) * len(encodings[order[end]].ids) <= (
                BATCH_TOKENS
            ):
                end += 1
            chunk, start = order[start:end], end
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[chunk] = pooled
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: np.ndarray = out / np.maximum(norms, 1e-12)
        return normalised


def paper_text(title: str, abstract: str) -> str:
    """What a paper is embedded from."""
    return f"{title.strip()}. {abstract.strip()}" if abstract.strip() else title.strip()
