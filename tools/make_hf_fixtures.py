#!/usr/bin/env python3
"""Writes tiny random-weight Hugging Face checkpoints (Llama, Qwen2, Qwen3) with transformers,
plus reference logits, into tests/data/hf/. Run on a machine with torch and transformers
(the GPU machine): python3 tools/make_hf_fixtures.py OUT_DIR

Each model directory holds what save_pretrained wrote (config.json, safetensors, possibly
sharded with model.safetensors.index.json, generation_config.json) and:
  reference_ids.txt     token ids, space-separated
  reference_logits.f32  raw little-endian float32 logits, shape [n_ids, vocab], computed in
                        float32 from the weights as stored (after their dtype rounding)
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

# Small enough to ship in the repository (well under 1 MB each), big enough to have
# grouped-query attention (4 heads, 2 KV heads), several layers and a real vocabulary.
COMMON = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=384, max_position_embeddings=256, rms_norm_eps=1e-6)

MODELS = {
    # name: (config class, extra config, dtype to store, max shard size or None)
    "llama": (transformers.LlamaConfig, dict(rope_theta=10000.0, tie_word_embeddings=False), torch.float32, None),
    "qwen2": (transformers.Qwen2Config, dict(rope_theta=1000000.0, tie_word_embeddings=True), torch.bfloat16, "60KB"),
    "qwen3": (transformers.Qwen3Config, dict(rope_theta=1000000.0, head_dim=32, tie_word_embeddings=True), torch.float16, None),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/hf"
    torch.manual_seed(0)
    ids = [1, 17, 250, 3, 99, 383, 0, 42, 7, 128, 64, 200]
    for name, (cls, extra, dtype, shard) in MODELS.items():
        config = cls(**COMMON, **extra)
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        with torch.no_grad():  # widen the init so activations are not all tiny
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.normal_(1.0, 0.05)
                elif p.dim() == 2:
                    p.normal_(0.0, 0.08)
                else:
                    p.normal_(0.0, 0.02)  # q/k/v biases
        model = model.to(dtype)
        path = os.path.join(out, name)
        kwargs = dict(safe_serialization=True)
        if shard:
            kwargs["max_shard_size"] = shard
        model.save_pretrained(path, **kwargs)
        ref = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
        with torch.no_grad():
            logits = ref(torch.tensor([ids])).logits[0].float().contiguous()
        logits.numpy().astype("<f4").tofile(os.path.join(path, "reference_logits.f32"))
        with open(os.path.join(path, "reference_ids.txt"), "w") as f:
            f.write(" ".join(map(str, ids)) + "\n")
        with open(os.path.join(path, "fixture.json"), "w") as f:
            json.dump({"generator": "tools/make_hf_fixtures.py", "transformers": transformers.__version__,
                       "torch": torch.__version__, "stored_dtype": str(dtype), "n_ids": len(ids),
                       "logits_shape": list(logits.shape)}, f, indent=2)
        print(name, sorted(os.listdir(path)), tuple(logits.shape))


if __name__ == "__main__":
    main()
