"""The `minivit` command: list, info, convert, predict, segment, detect, warmup.

Thin on purpose: each subcommand parses its arguments, calls one library function
(minivit.models, minivit.profile, minivit.checkpoints, minivit.predict,
minivit.warmup) and prints. An error minivit raises on purpose (MinivitError) is
printed as `minivit: error: ...` and exits with status 2; `--debug` shows the
traceback instead. `predict` exits with 1 when some images failed and the rest ran.
The installed command and `python -m minivit` enter through `run`, which also skips the
interpreter's last garbage collection (see there).
"""
import argparse
import gc
import json
import sys
import traceback

from .errors import MinivitError

EXIT_FAILED = 1        # predict: some images could not be read (the others were)
EXIT_ERROR = 2         # bad arguments, or a MinivitError


class Progress:
    """A one-line progress bar on stderr, redrawn in place ("\\r")."""

    def __init__(self, total, stream=None, width=30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr

    def draw(self):
        filled = self.width * self.done // max(self.total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} images")
        self.stream.flush()

    def clear(self):
        self.stream.write("\r" + " " * (self.width + 30) + "\r")
        self.stream.flush()

    def step(self):
        self.done += 1
        self.draw()


def _error(message):
    """`minivit: error: ...`, further lines of a long message indented below it."""
    first, *rest = str(message).splitlines() or [""]
    print(f"minivit: error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line}", file=sys.stderr)


# ---- list ----------------------------------------------------------------------------------

FAMILIES = {"v1": "v1", "v2": "v2", "v3_v1": "v3 (v1-based)", "v3_v2": "v3 (v2-based)"}


def cmd_list(args):
    from .models.registry import get_config, list_models
    task = None if args.task == "all" else args.task
    rows = [("model", "family", "params", "input", "preprocessing", "top-1 (paper)")]
    for name in list_models(task=task):
        config = get_config(name)
        model = _unloaded(name)
        p = getattr(config, "preprocessing", None)
        paper = getattr(config, "paper", {}) or {}
        rows.append((name, FAMILIES.get(getattr(config, "block", None), getattr(config, "task", "-")),
                     f"{model.num_params() / 1e6:.2f} M",
                     f"3x{p.crop}x{p.crop}" if p else "-",
                     f"shorter side {p.resize}, {p.interpolation}" if p else "-",
                     f"{paper['top1']:.2f}" if "top1" in paper else "-"))
    _table(rows)


def _unloaded(name):
    """A model with its shapes but no weights loaded (enough to count parameters)."""
    from .models.dense import build_dense
    from .models.mobilevit import MobileViT
    from .models.registry import get_config
    config = get_config(name)
    if getattr(config, "task", "classification") == "classification":
        return MobileViT(config)
    return build_dense(config)


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


# ---- info ----------------------------------------------------------------------------------

def cmd_info(args):
    from .models.registry import create_model, get_config
    from .profile import format_profile, profile
    config = get_config(args.model)
    if getattr(config, "task", "classification") != "classification":
        raise MinivitError(f"info covers the classifiers (`minivit list`); {args.model} is a {config.task} model")
    p = config.preprocessing
    size = tuple(args.size) if args.size else (p.crop, p.crop)
    rows = profile(create_model(args.model), size)       # seeded weights: the counts need only shapes
    paper = config.paper or {}
    print(f"{args.model}: MobileViT {FAMILIES[config.block]}, {sum(r.params for r in rows):,} parameters, "
          f"{sum(r.macs for r in rows) / 1e6:,.1f} M multiply-accumulates at 3x{size[0]}x{size[1]}")
    print(f"preprocessing: shorter side to {p.resize}, centre crop {p.crop}, {p.interpolation}; RGB in [0, 1]")
    said = [f"{paper['params_m']} M parameters" if "params_m" in paper else "",
            f"{paper['macs_m']} M MACs" if "macs_m" in paper else "",
            f"ImageNet-1k top-1 {paper['top1']}%" if "top1" in paper else ""]
    if any(said):
        print("paper: " + ", ".join(s for s in said if s))
    print()
    print(format_profile(rows))


# ---- convert -------------------------------------------------------------------------------

def cmd_convert(args):
    from .checkpoints import convert_checkpoint
    prep = None
    if args.resize or args.crop or args.interpolation:
        if not (args.resize and args.crop and args.interpolation):
            raise MinivitError("--resize, --crop and --interpolation go together (all three or none)")
        prep = dict(resize=args.resize, crop=args.crop, interpolation=args.interpolation)
    info = convert_checkpoint(args.checkpoint, model=args.model, source=args.source, channels=args.channels,
                              out=args.output, labels=args.labels, preprocessing=prep)
    flip = ", BGR stem flipped to RGB" if info["channels"] == "bgr" else ""
    classes = f", {info['num_classes']} classes" if info["num_classes"] else ""
    print(f"{info['out']}: {info['model']} from {info['source']} naming, "
          f"{info['tensors']} tensors{classes}{flip}")


# ---- predict -------------------------------------------------------------------------------

def cmd_predict(args):
    from .predict import find_images, iter_predictions, load_model, preprocess_for
    model = load_model(args.model, args.weights)
    prep = preprocess_for(model, args.resize, args.crop, args.interpolation)
    items = find_images(args.images)
    show = args.progress if args.progress is not None else (len(items) >= 20 and sys.stderr.isatty())
    bar = Progress(len(items)) if show else None
    results, failed = [], 0
    for name, top, error in iter_predictions(args.images, model, args.topk, args.batch_size, prep):
        if bar:
            bar.clear()
        if error is not None:
            failed += 1
            _error(error)
        elif not args.json:
            print(name)
            for label, prob in top:
                print(f"  {100 * prob:7.2f}%  {label}")
        results.append({"image": name, "error": None if error is None else str(error),
                        "predictions": [{"label": label, "probability": prob} for label, prob in top or []]})
        if bar:
            bar.step()
    if bar:
        bar.clear()
    if args.json:
        print(json.dumps(results, indent=2))
    if failed:
        print(f"minivit: {failed} of {len(results)} images failed", file=sys.stderr)
        return EXIT_FAILED
    return 0


# ---- warmup --------------------------------------------------------------------------------

def cmd_warmup(args):
    from .warmup import warmup
    seconds = warmup(args.model)
    print(f"{args.model}: every kernel it needs is compiled (or loaded from Numba's on-disk cache), "
          f"{seconds:.1f} s")


# ---- the parser ----------------------------------------------------------------------------

def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def build_parser():
    from . import __version__
    from .preprocess import INTERPOLATIONS
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="minivit", formatter_class=fmt,
        description="MobileViT v1/v2/v3 inference in NumPy + Numba: list models, inspect, convert, predict.",
        epilog="example:\n  minivit predict minivit/data/digits/digit_7.png\n\n"
               "`minivit COMMAND --help` shows each command's options and an example.")
    parser.add_argument("--version", action="version", version=f"minivit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    # --debug also after the command; SUPPRESS keeps the subparser from resetting it to False
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, func, help, example):
        p = sub.add_parser(name, help=help, description=help, parents=[common], formatter_class=fmt,
                           epilog="example:\n" + "\n".join(f"  {line}" for line in example))
        p.set_defaults(func=func)
        return p

    p = command("list", cmd_list, "list the model variants, their parameters and the input each expects",
                ["minivit list"])
    p.add_argument("--task", default="classification",
                   choices=("classification", "segmentation", "detection", "all"),
                   help="which models to list (default: classification)")

    p = command("info", cmd_info, "parameters, multiply-accumulates and the output shape of every stage",
                ["minivit info mobilevitv2_050", "minivit info mobilevit_xxs --size 320 320"])
    p.add_argument("model", metavar="MODEL", help="a name from `minivit list`")
    p.add_argument("--size", nargs=2, type=_positive, metavar=("H", "W"),
                   help="input height and width (default: the model's crop size)")

    p = command("convert", cmd_convert,
                "convert a PyTorch checkpoint (cvnets, timm or Hugging Face naming) to a minivit .safetensors file",
                ["minivit convert mobilevit_xxs.pt --model mobilevit_xxs -o mobilevit_xxs.safetensors",
                 "minivit convert timm/mobilevitv2_050.cvnets_in1k      (a Hub name; needs a network)"])
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help=".safetensors (no torch needed), .pt/.pth/.bin (read with torch.load(weights_only=True)), "
                        "or a Hugging Face Hub name such as timm/mobilevit_xxs.cvnets_in1k")
    p.add_argument("--model", help="the variant (default: told from the checkpoint's shapes)")
    p.add_argument("--source", default="auto", choices=("auto", "cvnets", "timm", "hf"),
                   help="the checkpoint's naming (default: auto, told from its keys)")
    p.add_argument("--channels", choices=("rgb", "bgr"),
                   help="the channel order the checkpoint was trained on (default: what that source's "
                        "released checkpoints use: bgr for official v1 and v1-based v3, else rgb); "
                        "the output always takes RGB")
    p.add_argument("-o", "--output", metavar="OUT", help="the file to write (default: MODEL.safetensors)")
    p.add_argument("--labels", metavar="FILE", help="class names to store, one per line, in logit order")
    p.add_argument("--resize", type=_positive, help="store this preprocessing with the weights: shorter side")
    p.add_argument("--crop", type=_positive, help="... centre crop size")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, help="... resize interpolation")

    p = command("predict", cmd_predict, "top-k labels and probabilities for images (files or folders)",
                ["minivit predict minivit/data/digits/digit_7.png      (the shipped digit model)",
                 "minivit predict photos/ --weights mobilevit_xxs.safetensors --topk 3 --json"])
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files, or folders (their image files, not recursive)")
    p.add_argument("--model", help="the variant (default: what the weights file names)")
    p.add_argument("--weights", help="a minivit .safetensors file, or 'random' for untrained weights "
                                     "(default with no --model: the shipped digit model)")
    p.add_argument("--topk", type=_positive, default=5, help="how many labels per image (default 5)")
    p.add_argument("--batch-size", type=_positive, default=16, help="images per forward pass (default 16)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--resize", type=_positive, help="override the shorter-side size")
    p.add_argument("--crop", type=_positive, help="override the centre crop size")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, help="override the resize interpolation")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", action="store_true", default=None,
                     help="show a progress bar on stderr (default: for 20+ images on a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show one")

    p = command("warmup", cmd_warmup,
                "compile every Numba kernel a model needs (cached on disk) and report how long it took",
                ["minivit warmup", "minivit warmup mobilevitv2_050"])
    p.add_argument("model", nargs="?", default="mobilevitv3_xxs", metavar="MODEL",
                   help="a name from `minivit list` (default: mobilevitv3_xxs, the shipped digit model's)")

    from .tasks import add_commands
    add_commands(command)               # segment, detect: minivit.tasks
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 some images failed, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except MinivitError as e:
        if args.debug:
            traceback.print_exc()
        _error(e)
        return EXIT_ERROR
    except BrokenPipeError:             # `minivit predict ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("minivit: interrupted", file=sys.stderr)
        return 130


def run():
    """The command's entry point: main() on sys.argv, then gc.freeze() before the process exits.

    At exit CPython runs one last full garbage collection. After a forward pass it walks the
    hundreds of thousands of objects Numba keeps for its compiled kernels, all of them alive
    until the end, and that took 0.25-0.35 s of a 1.1-1.2 s `minivit predict` on one image
    (0.05-0.06 s with the freeze; benchmarks/RESULTS.md has the command's whole time). Frozen
    objects are left out of that collection. Nothing is lost: memory goes back to the system with
    the process, files are closed as they are finished with, and atexit handlers still run.
    main() itself, which tests and other programs call, does not touch the collector.
    """
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(run())
