#!/usr/bin/env python3
"""Trains qmr's bundled default reasoning model from scratch on qmr's own synthetic math problems.

Run on the GPU machine (torch, transformers, tokenizers), with data written by `qmr synth`:
    qmr synth --n 3000000 --seed 1 --out train.jsonl
    python3 tools/train_default_model.py --data train.jsonl --out models/qmr-math --minutes 20

What it does, and why:
- Text format, the one `qmr eval` prompts with: "Question: {question}\\nAnswer: {answer}<|endoftext|>",
  the answer being the generator's chain of thought with <<a*b=c>> annotations and "#### N".
- A byte-level BPE tokenizer (HF tokenizers) with Qwen2's normalizer and pre-tokenizer: digits are
  single tokens, so every number is spelled digit by digit and arithmetic is learnable.
- A Llama-architecture model (the same code path in qmr as Llama/Qwen), sized to train well in
  tens of minutes on one H100 and to decode quickly on two CPU cores.
- Loss on answer tokens only: the questions come from templates; the capacity goes to the reasoning.
- Examples are packed into fixed-length rows; a cosine schedule is fitted to the time budget from
  the measured step time.
Outputs in --out: config.json, model.safetensors (bf16), tokenizer.json, generation_config.json,
training_card.json, reference.json + reference_logits.f32 (transformers' logits for a fixture test).
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
EOS = "<|endoftext|>"


def prompt_of(question):
    return f"Question: {question}\nAnswer:"


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, "<|im_start|>", "<|im_end|>"],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    # A multiple of 256, so that every group size qmr ships (32..256) divides the down projection's input.
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--log", default=None)
    ap.add_argument("--data-note", default="", help="how --data was made (generator version, seeds), for the card")
    ap.add_argument("--held-out", type=int, default=60, help="held-out problems decoded greedily at the end")
    ap.add_argument("--no-compile", action="store_true", help="do not torch.compile the model")
    args = ap.parse_args()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    start = time.time()
    log = open(args.log or os.path.join(args.out + ".log"), "a")

    def say(*a):
        msg = " ".join(str(x) for x in a)
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    rows = [json.loads(line) for line in open(args.data)]
    random.shuffle(rows)
    held_out, rows = rows[:2000], rows[2000:]
    say(f"{len(rows)} training problems ({args.data_note})")
    tok = train_tokenizer((prompt_of(r["question"]) + " " + r["answer"] for r in rows[:200000]), args.vocab)
    eos_id = tok.token_to_id(EOS)

    # Tokenize: prompt ids (no loss) + answer ids + eos (loss).
    t0 = time.time()
    prompts = tok.encode_batch([prompt_of(r["question"]) for r in rows])
    answers = tok.encode_batch([" " + r["answer"] for r in rows])
    # numpy pieces, not Python lists: hundreds of millions of ids would need many GB as lists.
    pieces, masks = [], []
    eos_arr = np.array([eos_id], dtype=np.int16)
    for p, a in zip(prompts, answers):
        pieces += [np.asarray(p.ids, dtype=np.int16), np.asarray(a.ids, dtype=np.int16), eos_arr]
        masks += [np.zeros(len(p.ids), dtype=np.bool_), np.ones(len(a.ids) + 1, dtype=np.bool_)]
    ids, mask = np.concatenate(pieces), np.concatenate(masks)
    del pieces, masks
    n_rows = len(ids) // (args.seq + 1)
    data = torch.from_numpy(ids[: n_rows * (args.seq + 1)].astype(np.int32)).view(n_rows, args.seq + 1)
    loss_mask = torch.from_numpy(mask[: n_rows * (args.seq + 1)]).view(n_rows, args.seq + 1)
    say(f"tokenized {len(ids)} tokens ({n_rows} rows of {args.seq + 1}) in {time.time() - t0:.0f}s; "
        f"mean prompt {sum(len(p.ids) for p in prompts) / len(prompts):.1f}, answer {sum(len(a.ids) for a in answers) / len(answers):.1f} tokens")

    config = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=eos_id, pad_token_id=eos_id, attention_bias=False, mlp_bias=False)
    model = transformers.LlamaForCausalLM(config).cuda()
    fwd = model if args.no_compile else torch.compile(model)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {n_params / 1e6:.2f}M parameters")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=True)
    data, loss_mask = data.cuda(), loss_mask.cuda()
    budget = args.minutes * 60 - (time.time() - start) - 60  # leave a minute to save
    step, total_steps, warmup, tokens = 0, None, 200, 0
    train_start = time.time()
    model.train()
    perm = torch.randperm(n_rows, device="cuda")
    cursor = 0
    while True:
        if cursor + args.batch > n_rows:
            perm, cursor = torch.randperm(n_rows, device="cuda"), 0
        idx = perm[cursor: cursor + args.batch]
        cursor += args.batch
        batch, m = data[idx].long(), loss_mask[idx]
        x, y = batch[:, :-1], batch[:, 1:].clone()
        y[~m[:, 1:]] = -100
        if step == 10:
            t10 = time.time()
        if step == 40:  # fit the schedule to the time budget from the step time measured after compilation
            per_step = (time.time() - t10) / 30
            total_steps = 40 + int((budget - (time.time() - train_start)) / per_step)
            say(f"{per_step * 1000:.0f} ms/step -> {total_steps} steps, {total_steps * args.batch * args.seq / 1e9:.2f}B tokens")
        horizon = total_steps or 10 ** 9
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / horizon))))
        for g in opt.param_groups:
            g["lr"] = lr
        def forward_backward(f):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = f(input_ids=x).logits
            # y is already shifted (y[t] = x[t+1]); HF's own `labels=` would shift a second time.
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1),
                                                     ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            return loss

        try:
            loss = forward_backward(fwd)
        except Exception as e:  # torch.compile can fail on some stacks: train eagerly instead
            if fwd is model or step > 0:
                raise
            say(f"torch.compile failed ({type(e).__name__}: {e}); training eagerly")
            fwd = model
            loss = forward_backward(fwd)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += x.numel()
        step += 1
        if step % 200 == 0:
            say(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - start:.0f}s")
        if total_steps and step >= total_steps:
            break
    final_loss = loss.item()

    # Held-out greedy accuracy (a quick check; qmr eval is the measurement).
    model.eval()
    correct, by_level = 0, {}
    with torch.no_grad():
        for r in held_out[:args.held_out]:
            p = tok.encode(prompt_of(r["question"])).ids
            out = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=200, do_sample=False,
                                 eos_token_id=eos_id, pad_token_id=eos_id)
            text = tok.decode(out[0, len(p):].tolist())
            ok = text.strip().split("####")[-1].strip().split("\n")[0].strip() == str(r["answer"].split("####")[-1].strip())
            correct += ok
            lv = by_level.setdefault(r["level"], [0, 0])
            lv[0] += ok
            lv[1] += 1
    say(f"held-out greedy accuracy {correct / max(1, args.held_out):.3f}; by level " +
        ", ".join(f"L{k}: {v[0]}/{v[1]}" for k, v in sorted(by_level.items())))

    os.makedirs(args.out, exist_ok=True)
    model = model.float().cpu()
    model.to(torch.bfloat16).save_pretrained(args.out, max_shard_size="15MB")
    tok.save(os.path.join(args.out, "tokenizer.json"))
    ref_model = transformers.AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    ref_ids = tok.encode(prompt_of(held_out[0]["question"]) + " " + held_out[0]["answer"]).ids[:64]
    with torch.no_grad():
        logits = ref_model(torch.tensor([ref_ids])).logits[0].float().contiguous()
    logits.numpy().astype("<f4").tofile(os.path.join(args.out, "reference_logits.f32"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"ids": ref_ids, "vocab": config.vocab_size, "logits_shape": list(logits.shape),
                   "stored_dtype": "torch.bfloat16", "continuations": []}, f)
    card = {
        "name": os.path.basename(os.path.normpath(args.out)), "architecture": "LlamaForCausalLM",
        "parameters": n_params, "data": os.path.basename(args.data), "training_problems": len(rows),
        "data_note": args.data_note, "steps": step, "tokens": tokens, "batch": args.batch,
        "sequence": args.seq, "lr": args.lr, "final_loss": final_loss, "wall_seconds": time.time() - start,
        "hardware": torch.cuda.get_device_name(0), "seed": args.seed, "torch": torch.__version__,
        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "held_out_greedy_accuracy": correct / max(1, args.held_out), "prompt_format": "Question: {question}\\nAnswer:",
        "command": "python3 tools/train_default_model.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
    }
    with open(os.path.join(args.out, "training_card.json"), "w") as f:
        json.dump(card, f, indent=1)
    say(json.dumps(card))


if __name__ == "__main__":
    main()
