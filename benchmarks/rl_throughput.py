"""RL throughput on CPU: rlscale's GRPO step against Hugging Face TRL's GRPOTrainer.

Same task (arith-graph prompts, ops 1-4), same batch (32 prompts x 8 samples), same generation
length (64 new tokens, sampling at temperature 1), same size of model (d=128, 4 layers, 4 heads,
random init: rlscale's transformer vs a GPT-2 config), same recipe (GRPO with a k3 KL to a
reference, beta 0.04), same torch thread count and the same precision, both measured in this
run: fp32 (TRL ``bf16=False``, rlscale ``rl.precision=fp32``) and bf16 autocast with fp32
weights (TRL ``bf16=True``, rlscale ``rl.precision=bf16``, its default). A random-init model
rarely emits EOS, so both generate the full 64 tokens: the comparison is of the machinery.
Nothing is downloaded: the GPT-2 model and a character-level tokenizer are built in-process.

    python benchmarks/rl_throughput.py [--steps 5] [--threads 2] [--precision fp32|bf16|both] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402

from rlscale.rl.config import JobConfig  # noqa: E402
from rlscale.rl.tasks import VOCAB, sample_problems, score  # noqa: E402

PROMPTS, GROUP, NEW_TOKENS = 32, 8, 64


def prompts(n: int, seed: int = 0):
    return sample_problems(seed, n, ops_min=1, ops_max=4, split="train", eval_fraction=0.05)


def bench_rlscale(steps: int, precision: str) -> dict[str, float]:
    from rlscale.rl.model import Transformer
    from rlscale.rl.recipes import resolve
    from rlscale.rl.step import rl_step

    config = JobConfig().with_overrides([
        f"rl.prompts_per_step={PROMPTS}", f"rl.group_size={GROUP}", f"rl.max_new_tokens={NEW_TOKENS}",
        "rl.recipe=grpo", f"rl.precision={precision}"])
    torch.manual_seed(0)
    policy = Transformer(config.model)
    ref = Transformer(config.model).eval()
    ref.load_state_dict(policy.state_dict())
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    rl = resolve(config.rl)
    rl_step(policy, ref, opt, rl, config.task, seed=0, step=0)  # warm-up
    tokens, t0 = 0, time.perf_counter()
    for step in range(1, steps + 1):
        tokens += rl_step(policy, ref, opt, rl, config.task, seed=0, step=step).tokens
    wall = time.perf_counter() - t0
    return {"params": policy.n_params(), "tokens_per_s": tokens / wall, "steps_per_s": steps / wall,
            "tokens_per_step": tokens / steps}


def char_tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<pad>")


def bench_trl(steps: int, precision: str) -> dict[str, float]:
    from datasets import Dataset
    from transformers import GPT2Config, GPT2LMHeadModel, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = char_tokenizer()
    cfg = GPT2Config(vocab_size=len(VOCAB), n_positions=256, n_embd=128, n_layer=4, n_head=4,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    # TRL builds its KL reference from a path, so the random-init model goes to a local folder
    path = tempfile.mkdtemp(prefix="rlscale-trl-gpt2-")
    GPT2LMHeadModel(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    problems = {p.prompt(): p for p in prompts(PROMPTS * (steps + 2))}
    data = Dataset.from_dict({"prompt": list(problems)})
    counted = {"tokens": 0}

    def reward(prompts, completions, completion_ids, **_):
        counted["tokens"] += sum(len(c) for c in completion_ids)
        return [score(problems[p], c) for p, c in zip(prompts, completions)]

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), counted["tokens"]))

    args = GRPOConfig(output_dir="/tmp/rlscale-trl-bench", use_cpu=True, max_steps=steps + 1,
                      per_device_train_batch_size=PROMPTS * GROUP, num_generations=GROUP,
                      steps_per_generation=1, max_completion_length=NEW_TOKENS, temperature=1.0,
                      beta=0.04, learning_rate=1e-4, logging_steps=10_000, report_to="none",
                      save_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0,
                      bf16=precision == "bf16")
    trainer = GRPOTrainer(model=path, reward_funcs=reward, args=args, train_dataset=data,
                          processing_class=tokenizer, callbacks=[Clock()])
    trainer.train()
    (t0, k0), (t1, k1) = marks[0], marks[-1]  # the first step is the warm-up
    n = len(marks) - 1
    return {"params": trainer.model.num_parameters(), "tokens_per_s": (k1 - k0) / (t1 - t0),
            "steps_per_s": n / (t1 - t0), "tokens_per_step": (k1 - k0) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per system (after 1 warm-up)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    ap.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    ap.add_argument("--pairs", type=int, default=1,
                    help="measure rlscale then TRL this many times, alternating; the summary is "
                         "the median of the pairs' ratios (each pair close in time, so drift in a "
                         "shared machine's speed cancels)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for precision in (["fp32", "bf16"] if a.precision == "both" else [a.precision]):
        ratios = []
        for _ in range(a.pairs):
            ours = bench_rlscale(a.steps, precision)
            print(f"[{precision}] rlscale : {ours['params']:,} params  {ours['tokens_per_s']:8.0f} tok/s  "
                  f"{ours['steps_per_s']:.3f} steps/s  ({ours['tokens_per_step']:.0f} tok/step)", flush=True)
            try:
                theirs = bench_trl(a.steps, precision)
            except ImportError as exc:
                print(f"TRL baseline unavailable ({exc}); pip install 'rlscale[bench]'")
                return
            print(f"[{precision}] TRL     : {theirs['params']:,} params  {theirs['tokens_per_s']:8.0f} tok/s  "
                  f"{theirs['steps_per_s']:.3f} steps/s  ({theirs['tokens_per_step']:.0f} tok/step)")
            ratios.append((ours["tokens_per_s"] / theirs["tokens_per_s"], ours["steps_per_s"] / theirs["steps_per_s"]))
            print(f"[{precision}] ratio   : {ratios[-1][0]:.1f}x tokens/s, {ratios[-1][1]:.1f}x steps/s "
                  f"(threads={a.threads}, torch {torch.__version__})", flush=True)
        if a.pairs > 1:
            print(f"[{precision}] median of {a.pairs} pairs: {statistics.median(r[0] for r in ratios):.1f}x "
                  f"tokens/s (range {min(r[0] for r in ratios):.1f}-{max(r[0] for r in ratios):.1f}), "
                  f"{statistics.median(r[1] for r in ratios):.1f}x steps/s", flush=True)


if __name__ == "__main__":
    main()
