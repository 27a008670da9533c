#!/usr/bin/env python3
"""Writes the transformers reference for qmr's rolling-window perplexity (eval/loglikelihood.hpp).

Run on the GPU machine (python3 with torch, transformers and tokenizers; no network), from the
repository root:
    python3 tools/perplexity_reference.py --model models/qmr-math \
        --text tests/data/tasks/perplexity_sample.txt --max-length 128 \
        --out tests/data/tasks/perplexity_reference.json

It loads the model with transformers in float32, tokenizes the text with the model's
tokenizer.json through `tokenizers` (no special tokens added, as lm-eval's tok_encode for
loglikelihood_rolling and as qmr's tokenizer::encode), and scores it as lm-evaluation-harness's
loglikelihood_rolling does with context_len=1: disjoint windows of max_length predictions, the
first window fed [prefix_token] + tokens[:max_length-1], each later window fed the max_length
tokens before its last prediction (get_rolling_token_windows + make_disjoint_window, then
_loglikelihood_tokens' input (context + continuation)[-(max_length+1):][:-1]). The prefix token
is lm-eval's prefix_token_id: the BOS token, or EOS when the model has none. qmr's
eval::score_rolling(session, tokenizer, text, prefix_token, max_length) computes the same sums.

The JSON holds: model, text_file, max_length, prefix_token, dtype, device, versions,
token_ids, tokens, words (len(re.split(r"\\s+", text))), bytes (UTF-8), loglikelihood (natural
log, summed over every token), token/word/byte perplexity, bits_per_byte, and windows:
[{"context_from", "predict_from", "predict_to", "loglikelihood"}] with token indices into
token_ids (context_from = -1 stands for the prefix token).
"""
import argparse
import json
import math
import os
import re
import sys

import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM


def rolling_windows(token_list, prefix_token, max_seq_len, context_len=1):
    """lm_eval.utils.get_rolling_token_windows, verbatim in substance."""
    assert 1 <= context_len <= max_seq_len
    if not token_list:
        return
    pred_len = max_seq_len - context_len + 1
    predicted = 0
    first_seq_len = min(max_seq_len, len(token_list))
    yield [prefix_token] + token_list[: first_seq_len - 1], token_list[:first_seq_len]
    predicted += first_seq_len
    while predicted < len(token_list):
        window_pred_len = min(len(token_list) - predicted, pred_len)
        window_end = predicted + window_pred_len
        yield (token_list[window_end - max_seq_len - 1 : window_end - 1],
               token_list[window_end - window_pred_len : window_end])
        predicted += window_pred_len


def make_disjoint_window(pair):
    """lm_eval.utils.make_disjoint_window: the context loses the tokens the continuation repeats."""
    a, b = pair
    return a[: len(a) - (len(b) - 1)], b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/qmr-math")
    ap.add_argument("--text", default="tests/data/tasks/perplexity_sample.txt")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--out", default="tests/data/tasks/perplexity_reference.json")
    args = ap.parse_args()

    with open(args.text, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    tok = tokenizers.Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    ids = tok.encode(text, add_special_tokens=False).ids

    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    eos = config.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
    prefix = config.get("bos_token_id")
    if prefix is None:
        prefix = eos
    if prefix is None:
        sys.exit("config.json names neither bos_token_id nor eos_token_id")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    model = model.to(device).eval()
    # Exact float32 matmuls: TF32 would cost the 0.1% budget on its own.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    max_length = args.max_length
    windows = []
    total = 0.0
    predict_from = 0
    for pair in rolling_windows(ids, prefix, max_length):
        context, continuation = make_disjoint_window(pair)
        # _loglikelihood_tokens: the model sees (context + continuation)[-(max_length+1):][:-1].
        whole = (context + continuation)[-(max_length + 1):]
        inp = torch.tensor([whole[:-1]], device=device)
        with torch.no_grad():
            logits = model(inp).logits[0].double()  # [len(inp), vocab]
        logprobs = torch.log_softmax(logits, dim=-1)[-len(continuation):]
        target = torch.tensor(continuation, device=device)
        ll = float(logprobs.gather(1, target[:, None]).sum())
        predict_to = predict_from + len(continuation)
        # The token index of the first input position (-1 = the prefix token).
        context_from = predict_to - 1 - len(inp[0])
        windows.append({"context_from": context_from, "predict_from": predict_from, "predict_to": predict_to,
                        "loglikelihood": ll})
        total += ll
        predict_from = predict_to
    assert predict_from == len(ids)

    words = len(re.split(r"\s+", text))
    n_bytes = len(raw)
    out = {
        "model": args.model,
        "text_file": args.text,
        "max_length": max_length,
        "prefix_token": prefix,
        "dtype": "float32",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]},
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "tokens": len(ids),
        "words": words,
        "bytes": n_bytes,
        "loglikelihood": total,
        "token_perplexity": math.exp(-total / len(ids)),
        "word_perplexity": math.exp(-total / words),
        "byte_perplexity": math.exp(-total / n_bytes),
        "bits_per_byte": -total / (n_bytes * math.log(2)),
        "windows": windows,
        "token_ids": ids,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{args.out}: {len(ids)} tokens in {len(windows)} windows of {max_length}, loglikelihood {total:.6f}, "
          f"token perplexity {out['token_perplexity']:.6f}, bits per byte {out['bits_per_byte']:.6f}")


if __name__ == "__main__":
    main()
