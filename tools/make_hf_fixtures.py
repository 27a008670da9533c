#!/usr/bin/env python3
"""Writes the transformers-made test fixtures of qmr into OUT_DIR (default tests/data/hf).

Run on a machine with torch, transformers and tokenizers (the GPU machine):
    python3 tools/make_hf_fixtures.py tests/data/hf

It writes:
  tokenizer/             a byte-level BPE tokenizer trained with HF `tokenizers` using Qwen2's
                         normalizer and pre-tokenizer, and cases.json: [{"text", "ids", "decoded"}]
  <model>/               tiny random-weight models of the real architectures, saved with
                         save_pretrained (config.json, safetensors, sharded for some) plus
                           tokenizer.json           the tokenizer above (vocab sizes match)
                           reference.json           ids of a long sequence, the greedy
                                                    continuations of several prompts
                           reference_logits.f32     logits of every position of that sequence,
                                                    raw little-endian float32 [n_ids, vocab],
                                                    computed in float32 from the stored weights
  fixtures.json          versions, seeds and the command, for the record
"""
import json
import os
import sys

import tokenizers
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM

# Qwen2's split pattern, as its tokenizer.json writes it.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Small enough to ship (a few hundred KB a model) yet with a real merge table.
VOCAB = 512


def corpus():
    words = ("the of and to in is was for on that with as by at from it an be this are or his which "
             "apples oranges Tom Mary buys sells has had left each total how many more than times per "
             "cost dollars cents price hours minutes week day rectangle area perimeter triangle angle "
             "average percent ratio probability equation solve answer therefore so we get").split()
    lines = []
    for i in range(4000):
        a, b = (i * 7919) % 1000, (i * 104729) % 97 + 1
        w = [words[(i * k + 3) % len(words)] for k in range(1, 9)]
        lines.append(f"{w[0].capitalize()} {w[1]} {w[2]} {a} {w[3]}s and {b} {w[4]}.")
        lines.append(f"({a}+{b})*{i % 13}={(a + b) * (i % 13)}; {a}-{b}={a - b}; {a}/{b}={a / b:.3f}")
        lines.append(f"Q: {' '.join(w)}?\nA: {a} * {b} = <<{a}*{b}={a * b}>>{a * b}\n#### {a * b}")
        if i % 10 == 0:
            lines.append("    indented\tline\n\n\nwith   runs   of   spaces  \r\n")
            lines.append("Café naïve Zürich façade résumé — “quotes” ‘single’ 1,234,567.89 $12.50 50% 3.14159")
            lines.append("中文字符测试 日本語のテキスト 한국어 Ελληνικά русский текст العربية")
            lines.append("emoji 🙂🚀👍🏽 and symbols ∑∫√≈≠≤≥ ← → ✓")
            lines.append("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>")
    return lines


CASES = [
    "", " ", "a", "Hello world", "Hello  world", " leading space", "trailing space ", "tabs\tand\nnewlines\n",
    "\n\n\n", "  \n  \n", "line one\r\nline two", "I'm sure they'll say it's 'fine' — we've done it",
    "DON'T SHOUT, I'LL HEAR YOU", "1234567890", "3.14159 and 2,718,281", "(12+3)*4=60", "x = -17.5e3",
    "Tom has 12 apples. He buys 3*4=<<3*4=12>>12 more.\n#### 24", "$1,000.50 is 50% of $2,001",
    "café", "cafe\u0301", "naïve Zürich", "Å Å", "中文", "日本語のテキストです", "한국어", "Ελληνικά",
    "🙂", "👍🏽", "🚀🚀🚀", "mixed中文and English123", "∑∫√≈", "\u00a0non-breaking\u00a0space", "zero\u200bwidth",
    "<|im_start|>user\nHi<|im_end|>", "<|endoftext|>", "text<|im_end|>more", "<|im_start|><|im_start|>",
    "unknown <|notspecial|> token", "a" * 100, "ab" * 50, "    indented code():\n        return 0\n",
    "The quick brown fox jumps over the lazy dog.", "Q: How many?\nA:", "#### 42", "x'y 'z' ''",
    "é" * 10, "😀😃😄😁😆", "\x00\x01\x7f control", "tab\there", "    ", "end."
]


def train_tokenizer(out):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    cases = []
    for text in CASES:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
    return tok


def models_to_make(vocab):
    base = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, max_position_embeddings=512,
                rms_norm_eps=1e-6, vocab_size=vocab, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    L, Q2, Q3 = transformers.LlamaConfig, transformers.Qwen2Config, transformers.Qwen3Config
    return {
        # name: (config class, config, stored dtype, max shard size)
        "llama-gqa2": (L, dict(base, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                               rope_theta=10000.0), torch.float32, None),
        "llama-gqa1-tied-rope-llama3": (L, dict(base, num_attention_heads=4, num_key_value_heads=4,
                                                tie_word_embeddings=True, rope_parameters=dict(
                                                    rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                    low_freq_factor=1.0, high_freq_factor=4.0,
                                                    original_max_position_embeddings=64)), torch.float32, None),
        "qwen2-gqa7-bias": (Q2, dict(base, hidden_size=112, num_attention_heads=14, num_key_value_heads=2,
                                     tie_word_embeddings=True, rope_theta=1000000.0), torch.float32, None),
        "qwen3-qknorm-linear-rope": (Q3, dict(base, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                              tie_word_embeddings=False, rope_parameters=dict(
                                                  rope_type="linear", rope_theta=1000000.0, factor=2.0)),
                                     torch.float32, None),
        "qwen2-bf16-sharded": (Q2, dict(base, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                        rope_theta=1000000.0), torch.bfloat16, "40KB"),
        "qwen3-f16-tied": (Q3, dict(base, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                    tie_word_embeddings=True, rope_theta=1000000.0), torch.float16, None),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/hf"
    torch.manual_seed(0)
    tok = train_tokenizer(os.path.join(out, "tokenizer"))
    vocab = tok.get_vocab_size()
    seq = tok.encode("Tom has 12 apples. He buys 3*4=<<3*4=12>>12 more.\n#### 24 and then", add_special_tokens=False).ids
    prompts = [tok.encode(p, add_special_tokens=False).ids for p in
               ["Q: How many apples?\nA:", "The answer is", "(12+3)*4="]]
    record = {"command": " ".join(sys.argv), "torch": torch.__version__, "transformers": transformers.__version__,
              "tokenizers": tokenizers.__version__, "seed": 0, "models": {}}
    for name, (cls, cfg, dtype, shard) in models_to_make(vocab).items():
        model = AutoModelForCausalLM.from_config(cls(**cfg), dtype=torch.float32)
        with torch.no_grad():  # wider than the default init, so that activations and logits are not all tiny
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.normal_(1.0, 0.1)
                elif p.dim() == 2:
                    p.normal_(0.0, 0.1)
                else:
                    p.normal_(0.0, 0.05)  # q/k/v biases
        model = model.to(dtype)
        path = os.path.join(out, name)
        model.save_pretrained(path, **({"max_shard_size": shard} if shard else {}))
        tok.save(os.path.join(path, "tokenizer.json"))
        ref = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = ref(torch.tensor([seq])).logits[0].float().contiguous()
            continuations = []
            for p in prompts:
                g = ref.generate(torch.tensor([p]), max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                 pad_token_id=0, attention_mask=torch.ones(1, len(p), dtype=torch.long))
                continuations.append({"prompt": p, "greedy": g[0, len(p):].tolist()})
        logits.numpy().astype("<f4").tofile(os.path.join(path, "reference_logits.f32"))
        with open(os.path.join(path, "reference.json"), "w") as f:
            json.dump({"ids": seq, "vocab": vocab, "logits_shape": list(logits.shape), "stored_dtype": str(dtype),
                       "continuations": continuations}, f, indent=1)
        record["models"][name] = {"dtype": str(dtype), "config": {k: str(v) for k, v in cfg.items()}}
        print(name, sorted(os.listdir(path)), tuple(logits.shape), continuations[0]["greedy"])
    with open(os.path.join(out, "fixtures.json"), "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
