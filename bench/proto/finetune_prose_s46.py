#!/usr/bin/env python3
"""Stop 46 experiment (issue 8): does text-calibrated GPTQ/AWQ lose to RTN on the bundled model because the
model cannot read prose at all (its NLL on data/calibration/generic_text.txt is 12.0 nats/token, worse than a
uniform guess's 6.93)? Continues training models/qmr-math on a mixture of its own task (synthetic math, loss on
answers only, as it was trained) and English prose from documentation (loss on every token), so that prose
becomes something the model reads, then saves the candidate for qmr eval on the CPU.

Run on the GPU machine:
  qmr synth --n 200000 --seed 11 --out math.jsonl     (seed 11: not a training, calibration or evaluation seed)
  python3 bench/proto/finetune_prose_s46.py --model models/qmr-math --math math.jsonl --prose prose.txt \
      --out OUT --minutes 6 --prose-share 0.3
The calibration text (data/calibration/generic_text.txt) is never trained on: its NLL is printed before and after.
"""
import argparse, json, math, os, random, time
import numpy as np
import torch
import transformers
from tokenizers import Tokenizer

EOS = "<|endoftext|>"


def pack(pieces, masks, seq):
    ids, mask = np.concatenate(pieces), np.concatenate(masks)
    n = len(ids) // (seq + 1)
    return (torch.from_numpy(ids[: n * (seq + 1)].astype(np.int64)).view(n, seq + 1),
            torch.from_numpy(mask[: n * (seq + 1)]).view(n, seq + 1))


@torch.no_grad()
def nll_of(model, ids, seq=512):
    x = torch.tensor([ids[: seq + 1]], device="cuda")
    logits = model(input_ids=x[:, :-1]).logits.float()
    return torch.nn.functional.cross_entropy(logits[0], x[0, 1:]).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--math", required=True)
    ap.add_argument("--prose", required=True)
    ap.add_argument("--calib-text", default="data/calibration/generic_text.txt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--prose-share", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--held-out", type=int, default=60)
    args = ap.parse_args()
    start = time.time()
    random.seed(0)
    torch.manual_seed(0)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    eos = tok.token_to_id(EOS)
    rows = [json.loads(l) for l in open(args.math)]
    held_out, rows = rows[:200], rows[200:]
    prompts = tok.encode_batch([f"Question: {r['question']}\nAnswer:" for r in rows])
    answers = tok.encode_batch([" " + r["answer"] for r in rows])
    e = np.array([eos], dtype=np.int16)
    pieces, masks = [], []
    for p, a in zip(prompts, answers):
        pieces += [np.asarray(p.ids, dtype=np.int16), np.asarray(a.ids, dtype=np.int16), e]
        masks += [np.zeros(len(p.ids), dtype=np.bool_), np.ones(len(a.ids) + 1, dtype=np.bool_)]
    math_data, math_mask = pack(pieces, masks, args.seq)
    paras = [p for p in open(args.prose).read().split("\n\n") if p.strip()]
    enc = tok.encode_batch(paras)
    pieces, masks = [], []
    for t in enc:
        pieces += [np.asarray(t.ids, dtype=np.int16), e]
        masks += [np.ones(len(t.ids) + 1, dtype=np.bool_)]
    prose_data, prose_mask = pack(pieces, masks, args.seq)
    print(f"math rows {len(math_data)}, prose rows {len(prose_data)} ({sum(len(t.ids) for t in enc)} tokens, "
          f"{len(open(args.prose).read()) / max(1, sum(len(t.ids) for t in enc)):.2f} bytes/token); {time.time() - start:.0f}s", flush=True)

    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).cuda()
    calib_ids = tok.encode(open(args.calib_text).read()).ids
    model.eval()
    held_prose = prose_data[-1].tolist()
    before = {"calib_text": nll_of(model, calib_ids), "prose": nll_of(model, held_prose)}
    print("NLL before (nats/token):", before, flush=True)
    # The last prose row is held out from training (its NLL is the in-domain prose check).
    prose_data, prose_mask = prose_data[:-1], prose_mask[:-1]
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=True)
    math_data, math_mask, prose_data, prose_mask = (t.cuda() for t in (math_data, math_mask, prose_data, prose_mask))
    n_prose = int(round(args.batch * args.prose_share))
    budget = args.minutes * 60 - (time.time() - start) - 45
    step, total, warmup = 0, None, 50
    t_train = time.time()
    while True:
        mi = torch.randint(0, len(math_data), (args.batch - n_prose,), device="cuda")
        pi = torch.randint(0, len(prose_data), (n_prose,), device="cuda")
        batch = torch.cat([math_data[mi], prose_data[pi]])
        m = torch.cat([math_mask[mi], prose_mask[pi]])
        x, y = batch[:, :-1], batch[:, 1:].clone()
        y[~m[:, 1:]] = -100
        if step == 10:
            t10 = time.time()
        if step == 30:
            per = (time.time() - t10) / 20
            total = 30 + int((budget - (time.time() - t_train)) / per)
            print(f"{per * 1000:.0f} ms/step -> {total} steps", flush=True)
        horizon = total or 10 ** 9
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / horizon))))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
        if total and step >= total:
            break
    model.eval()
    after = {"calib_text": nll_of(model, calib_ids), "prose": nll_of(model, held_prose)}
    print("NLL after (nats/token):", after, flush=True)
    correct = 0
    with torch.no_grad():
        for r in held_out[: args.held_out]:
            p = tok.encode(f"Question: {r['question']}\nAnswer:").ids
            out = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=200, do_sample=False,
                                 eos_token_id=eos, pad_token_id=eos)
            text = tok.decode(out[0, len(p):].tolist())
            correct += text.split("####")[-1].strip().split("\n")[0].strip() == r["answer"].split("####")[-1].strip()
    print(f"held-out greedy accuracy {correct}/{args.held_out}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    model.to(torch.bfloat16).cpu().save_pretrained(args.out, max_shard_size="15MB")
    card = {"base": args.model, "steps": step, "prose_share": args.prose_share, "lr": args.lr, "minutes": args.minutes,
            "nll_before": before, "nll_after": after, "held_out": f"{correct}/{args.held_out}",
            "seconds": time.time() - start, "hardware": torch.cuda.get_device_name(0)}
    json.dump(card, open(os.path.join(args.out, "finetune_card.json"), "w"), indent=1)
    print(json.dumps(card), flush=True)


if __name__ == "__main__":
    main()
