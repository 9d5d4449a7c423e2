"""The `minivit` command end to end, through `main([...])` and once through `python -m minivit`.

The converted checkpoints are checked against independent references: an official-format .pt
against the PyTorch reference model fed the way cvnets v0.1 evaluates (cv2.imread, so BGR, and
cv2.resize), and a timm-format .safetensors against the cvnets conversion of the same weights.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minivit
from minivit.cli import main
from minivit.models.registry import list_models
from minivit.predict import SHIPPED_WEIGHTS
from reference import official_weights

ROOT = Path(__file__).resolve().parent.parent
DIGITS = SHIPPED_WEIGHTS.parent / "digits"


def run(capsys, *argv):
    """main(argv) -> (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A smooth 3-channel 300x420 test image with distinct channels, as PNG."""
    y, x = np.mgrid[0:300, 0:420]
    rgb = np.stack([(x * 255 // 419), (y * 255 // 299), ((x + y) * 3 % 256)], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(rgb).save(path)
    return path


# ---- help and errors -------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["convert"], ["predict"], ["warmup"]])
def test_every_command_has_help_with_an_example(capsys, command):
    with pytest.raises(SystemExit) as e:
        main(command + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "minivit " in out.split("example:")[1]


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "x.png", "--topk", "0"])
    assert e.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_minivit_error_is_one_line_and_debug_shows_the_traceback(capsys):
    code, out, err = run(capsys, "predict", DIGITS / "digit_1.png", "--model", "mobilevit_xs")
    assert code == 2 and out == ""
    assert err.startswith("minivit: error: ") and err.count("\n") == 1 and "minivit convert" in err
    code, out, err = run(capsys, "predict", DIGITS / "digit_1.png", "--model", "mobilevit_xs", "--debug")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("minivit: error: predict: no weights for 'mobilevit_xs'")
    code, _, err = run(capsys, "--debug", "predict", DIGITS / "digit_1.png", "--model", "mobilevit_nope",
                       "--weights", "random")
    assert code == 2 and "Traceback" in err and "minivit: error: unknown model 'mobilevit_nope'" in err


# ---- list ----------------------------------------------------------------------------------

def test_list_shows_every_variant_with_parameters_and_input(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert list(lines) == list_models()
    # parameter counts of the official models (the reference data's README)
    for name, params in [("mobilevit_xxs", 1272024), ("mobilevitv2_050", 1370593), ("mobilevitv3_xxs", 1249448)]:
        assert f"{params / 1e6:.2f} M" in lines[name]
    assert "3x256x256" in lines["mobilevit_s"] and "cv2_bilinear" in lines["mobilevit_s"]
    assert "pil_bicubic" in lines["mobilevitv2_100"]
    code, out, _ = run(capsys, "list", "--task", "all")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == list_models(task=None)


# ---- info ----------------------------------------------------------------------------------

def test_info_parameters_macs_and_stage_shapes(capsys):
    from minivit.profile import count_macs
    code, out, _ = run(capsys, "info", "mobilevit_xxs")
    assert code == 0
    macs = count_macs(minivit.create_model("mobilevit_xxs"), (256, 256))
    assert f"1,272,024 parameters, {macs / 1e6:,.1f} M multiply-accumulates at 3x256x256" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    # stage shapes of the official model at 256x256 (the reference data's README)
    for stage, shape in [("conv_1", "(16, 128, 128)"), ("layer_2", "(24, 64, 64)"), ("layer_3", "(48, 32, 32)"),
                         ("layer_4", "(64, 16, 16)"), ("layer_5", "(80, 8, 8)"), ("conv_1x1_exp", "(320, 8, 8)")]:
        assert shape in rows[stage], rows[stage]
    code, out, _ = run(capsys, "info", "mobilevitv3_050", "--size", "320", "320")
    assert code == 0 and "at 3x320x320" in out and "(256, 10, 10)" in out and "conv_1x1_exp" not in out


# ---- telling checkpoints apart -------------------------------------------------------------

def test_every_official_variant_is_told_apart():
    from minivit.convert import detect_model, detect_source
    for name in list_models():
        weights = official_weights(name)
        assert detect_source(weights) == "cvnets"
        assert detect_model(weights, "cvnets") == [name]


def test_timm_and_hf_checkpoints_are_told_apart():
    from minivit.convert import detect_model, detect_source
    from test_timm_keys import V1, V2, timm_checkpoint
    for name in V1 + V2:
        ckpt = timm_checkpoint(name)
        assert detect_source(ckpt) == "timm" and detect_model(ckpt, "timm") == [name]
    pytest.importorskip("transformers")
    from test_hf_v1 import hf_model
    _, hf = hf_model("mobilevit_xs")
    assert detect_source(hf) == "hf" and detect_model(hf, "hf") == ["mobilevit_xs"]
    with pytest.raises(minivit.WeightsError, match="cannot tell the naming"):
        detect_source({"backbone.weight": np.zeros(3)})


# ---- predict -------------------------------------------------------------------------------

def test_predict_with_the_shipped_model(capsys):
    code, out, err = run(capsys, "predict", DIGITS / "digit_7.png")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0] == str(DIGITS / "digit_7.png") and len(lines) == 6
    assert lines[1].split()[-1] == "7" and lines[1].split()[0].endswith("%")


def test_predict_json_folder_and_a_bad_file(capsys, tmp_path):
    for d in (0, 5, 9):
        (tmp_path / f"d{d}.png").write_bytes((DIGITS / f"digit_{d}.png").read_bytes())
    (tmp_path / "bad.png").write_bytes(b"not a png")
    code, out, err = run(capsys, "predict", tmp_path, "--json", "--topk", "2", "--batch-size", "2")
    assert code == 1
    results = json.loads(out)
    assert [Path(r["image"]).name for r in results] == ["bad.png", "d0.png", "d5.png", "d9.png"]
    assert "not an image file" in results[0]["error"] and results[0]["predictions"] == []
    assert [r["predictions"][0]["label"] for r in results[1:]] == ["0", "5", "9"]
    assert all(len(r["predictions"]) == 2 and r["error"] is None for r in results[1:])
    assert f"minivit: error: {tmp_path / 'bad.png'}: not an image file" in err
    assert "1 of 4 images failed" in err
    # the same through the Python function (another batch: equal up to float32 summation order)
    top = minivit.predict([tmp_path / "d5.png"], topk=2)[0]
    assert [p["label"] for p in results[2]["predictions"]] == [label for label, _ in top]
    np.testing.assert_allclose([p["probability"] for p in results[2]["predictions"]], [p for _, p in top],
                               rtol=0, atol=1e-6)


def test_predict_progress_bar_goes_to_stderr(capsys):
    code, out, err = run(capsys, "predict", DIGITS, "--progress", "--topk", "1")
    assert code == 0 and "10/10 images" in err and "[" in err
    assert "images" not in out and out.count("%") == 10


# ---- convert (+ predict with the result) ---------------------------------------------------

def test_convert_official_pt_and_predict_like_cvnets(capsys, tmp_path, photo):
    """Official naming, .pt: told apart as cvnets / mobilevit_xxs; the BGR stem is flipped, so
    minivit on the RGB image equals the PyTorch reference on cv2's BGR decoding."""
    torch = pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    import torch_reference
    name = "mobilevit_xxs"
    weights = official_weights(name)
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}}, ckpt)
    out = tmp_path / "converted.safetensors"
    code, stdout, _ = run(capsys, "convert", ckpt, "-o", out)
    assert code == 0 and "mobilevit_xxs from cvnets naming" in stdout and "flipped" in stdout
    tensors, meta = minivit.load_weights(out)
    assert (meta["model"], meta["source"], meta["channels"], meta["checkpoint_channels"]) == (
        name, "cvnets", "rgb", "bgr")
    want = minivit.convert_state_dict(weights, name, "cvnets", checkpoint_channels="bgr")
    assert sorted(tensors) == sorted(want)
    for k in want:
        np.testing.assert_array_equal(tensors[k], want[k], err_msg=k)

    code, stdout, _ = run(capsys, "predict", photo, "--weights", out, "--topk", "1000", "--json")
    assert code == 0
    (result,) = json.loads(stdout)
    labels = minivit.labels.imagenet_labels()
    mine = np.zeros(1000)
    for p in result["predictions"]:
        mine[labels.index(p["label"])] = p["probability"]

    # cvnets v0.1 evaluation: cv2.imread (BGR), shorter side to 288 (INTER_LINEAR), centre crop 256
    bgr = cv2.imread(str(photo))
    h, w = bgr.shape[:2]
    bgr = cv2.resize(bgr, (int(288 * w / h), 288), interpolation=cv2.INTER_LINEAR)
    top, left = (288 - 256) // 2, (bgr.shape[1] - 256) // 2
    x = bgr[top:top + 256, left:left + 256].transpose(2, 0, 1)[None].astype(np.float32) / 255
    model = torch_reference.build(name).eval()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
    with torch.inference_mode():
        ref = torch.softmax(model(torch.from_numpy(np.ascontiguousarray(x))).double(), 1)[0].numpy()
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-9)
    assert labels[int(np.argmax(mine))] == labels[int(np.argmax(ref))]


def test_convert_timm_safetensors_and_predict(capsys, tmp_path):
    from safetensors.numpy import save_file
    from test_timm_keys import timm_checkpoint
    name = "mobilevitv2_050"
    ckpt = tmp_path / "model.safetensors"
    save_file({k: np.asarray(v) for k, v in timm_checkpoint(name).items()}, str(ckpt))
    out = tmp_path / "v2.safetensors"
    code, stdout, _ = run(capsys, "convert", ckpt, "--output", out)       # no --model, no --source
    assert code == 0 and f"{name} from timm naming" in stdout and "flipped" not in stdout
    tensors, meta = minivit.load_weights(out)
    assert (meta["model"], meta["source"], meta["channels"]) == (name, "timm", "rgb")
    want = minivit.convert_state_dict(official_weights(name), name, "cvnets", checkpoint_channels="rgb")
    for k in want:
        np.testing.assert_array_equal(tensors[k], want[k], err_msg=k)
    code, stdout, _ = run(capsys, "predict", DIGITS / "digit_3.png", "--weights", out, "--topk", "3")
    assert code == 0 and len(stdout.splitlines()) == 4
    (top,) = minivit.predict(DIGITS / "digit_3.png", weights=out, topk=3)
    assert [line.split(maxsplit=1)[1] for line in stdout.splitlines()[1:]] == [label for label, _ in top]


def test_convert_with_labels_and_preprocessing(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    weights = official_weights("mobilevitv3_xxs")
    weights["classifier.fc.weight"] = weights["classifier.fc.weight"][:3]
    weights["classifier.fc.bias"] = weights["classifier.fc.bias"][:3]
    ckpt = tmp_path / "three.pth"
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, ckpt)
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    out = tmp_path / "three.safetensors"
    code, stdout, _ = run(capsys, "convert", ckpt, "--model", "mobilevitv3_xxs", "--source", "cvnets",
                          "--channels", "rgb", "--labels", tmp_path / "names.txt", "--resize", "72",
                          "--crop", "64", "--interpolation", "pil_bicubic", "-o", out)
    assert code == 0 and "3 classes" in stdout and "flipped" not in stdout
    model = minivit.predict.__globals__["load_model"](weights=out)
    assert model.labels == ["cat", "dog", "bird"] and model.num_classes == 3
    assert (model.preprocessing.resize, model.preprocessing.crop) == (72, 64)
    code, stdout, _ = run(capsys, "predict", DIGITS / "digit_0.png", "--weights", out)
    assert code == 0 and {line.split()[-1] for line in stdout.splitlines()[1:]} == {"cat", "dog", "bird"}


def test_convert_refuses_another_variant_and_names_the_one_it_fits(capsys, tmp_path):
    from safetensors.numpy import save_file
    ckpt = tmp_path / "xs.safetensors"
    save_file({k: np.asarray(v) for k, v in official_weights("mobilevit_xs").items()}, str(ckpt))
    code, out, err = run(capsys, "convert", ckpt, "--model", "mobilevit_xxs", "-o", tmp_path / "o.safetensors")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "a checkpoint of mobilevit_xs" in err and "not mobilevit_xxs" in err
    assert not (tmp_path / "o.safetensors").exists()
    # and a state dict in a naming the source does not match
    code, _, err = run(capsys, "convert", ckpt, "--source", "timm", "-o", tmp_path / "o.safetensors")
    assert code == 2 and "cannot tell the variant" in err


def test_convert_never_overwrites_its_input(capsys, tmp_path):
    from safetensors.numpy import save_file
    ckpt = tmp_path / "mobilevit_xxs.safetensors"
    save_file({k: np.asarray(v) for k, v in official_weights("mobilevit_xxs").items()}, str(ckpt))
    before = ckpt.read_bytes()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)                      # the default output is MODEL.safetensors here
        code, _, err = run(capsys, "convert", ckpt.name)
    finally:
        os.chdir(cwd)
    assert code == 2 and "overwrite the checkpoint" in err and ckpt.read_bytes() == before


def test_convert_a_minivit_file_or_junk(capsys, tmp_path):
    code, _, err = run(capsys, "convert", SHIPPED_WEIGHTS, "-o", tmp_path / "o.safetensors")
    assert code == 2 and "already in minivit's naming" in err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    code, _, err = run(capsys, "convert", tmp_path / "junk.pt")
    assert code == 2 and err.startswith(f"minivit: error: {tmp_path / 'junk.pt'}: ")


def test_hub_names_offline_say_so_in_one_line(capsys, monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    import minivit.checkpoints as checkpoints
    monkeypatch.setattr(checkpoints, "_hub_reachable", lambda endpoint, timeout=3.0: False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "convert", "timm/mobilevit_xxs.cvnets_in1k")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "timm/mobilevit_xxs.cvnets_in1k: cannot reach the Hugging Face Hub (offline)" in err


def test_hub_names_without_huggingface_hub(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)          # import fails
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "convert", "apple/mobilevit-small")
    assert code == 2 and "pip install huggingface_hub" in err and err.count("\n") == 1


# ---- warmup --------------------------------------------------------------------------------

def test_warmup_reports_its_time(capsys):
    code, out, _ = run(capsys, "warmup")
    assert code == 0 and out.startswith("mobilevitv3_xxs: every kernel it needs is compiled")
    assert out.rstrip().endswith(" s") and float(out.rstrip()[:-2].rsplit(", ", 1)[1]) >= 0
    code, _, err = run(capsys, "warmup", "mobilevit_huge")
    assert code == 2 and "unknown model 'mobilevit_huge'" in err


def test_the_command_enters_through_run_which_freezes_the_collector_after_main(capsys, monkeypatch):
    import gc
    import tomllib
    from minivit import cli
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"minivit": "minivit.cli:run"}
    assert "from .cli import run" in (ROOT / "minivit" / "__main__.py").read_text()
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(len(capsys.readouterr().err)))
    monkeypatch.setattr(sys, "argv", ["minivit", "warmup", "mobilevit_huge"])
    assert cli.run() == 2 and calls and calls[0] > 0     # main's status; frozen once, after main printed


# ---- once through a real process -----------------------------------------------------------

def test_python_m_minivit_predicts_a_digit():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "minivit", "predict", str(DIGITS / "digit_4.png"), "--topk", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split()[-1] == "4"
    proc = subprocess.run([sys.executable, "-m", "minivit", "predict", "missing.png"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1 and "minivit: error: missing.png: no such file" in proc.stderr
