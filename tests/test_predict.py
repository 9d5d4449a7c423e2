"""minivit.predict and its parts: choosing the model and weights, class names, preprocessing
carried by a weights file, folders, bad files, top-k and batching."""
import json

import numpy as np
import pytest
from PIL import Image

import minivit
from minivit.predict import (SHIPPED_WEIGHTS, class_names, find_images, iter_predictions, load_model,
                             preprocess_for, softmax, top_k)
from minivit.weights import read_metadata

DIGITS = SHIPPED_WEIGHTS.parent / "digits"
META = {"model": "mobilevitv3_xxs", "source": "test", "channels": "rgb"}


@pytest.fixture(scope="module")
def small_model():
    """A seeded untrained 10-class mobilevitv3_xxs (its state dict, for writing files)."""
    return minivit.create_model("mobilevitv3_xxs", num_classes=10)


def write(path, model, **meta):
    minivit.save_weights(path, model.state_dict(), {**META, **meta})
    return path


def test_shipped_model_reads_a_sample_digit():
    (top,) = minivit.predict(DIGITS / "digit_7.png")
    assert len(top) == 5 and top[0][0] == "7"
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-12
    assert all(isinstance(label, str) and isinstance(p, float) for label, p in top)


def test_probabilities_are_the_softmax_of_the_logits():
    model = load_model()
    x = preprocess_for(model)(DIGITS / "digit_2.png")                    # (1, 3, 64, 64)
    logits = model(x)[0].astype(np.float64)
    ref = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    (top,) = minivit.predict(DIGITS / "digit_2.png", topk=10)
    got = np.zeros(10)
    for label, p in top:
        got[int(label)] = p
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_batch_size_does_not_change_the_answers():
    paths = sorted(DIGITS.glob("digit_*.png"))
    one = minivit.predict(paths, topk=3, batch_size=1)
    seven = minivit.predict(paths, topk=3, batch_size=7)
    assert [[label for label, _ in t] for t in one] == [[label for label, _ in t] for t in seven]
    np.testing.assert_allclose([[p for _, p in t] for t in one], [[p for _, p in t] for t in seven],
                               rtol=0, atol=1e-6)


def test_topk_is_clamped_and_ties_keep_index_order():
    (top,) = minivit.predict(DIGITS / "digit_1.png", topk=50)
    assert sorted(label for label, _ in top) == [str(d) for d in range(10)]
    assert top_k(np.array([0.25, 0.5, 0.25]), ["a", "b", "c"], 3) == [("b", 0.5), ("a", 0.25), ("c", 0.25)]
    np.testing.assert_allclose(softmax(np.array([[0.0, 0.0], [1000.0, 0.0]], np.float32)),
                               [[0.5, 0.5], [1.0, 0.0]])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_topk_or_batch_size(bad):
    with pytest.raises(minivit.InputError, match="topk"):
        minivit.predict(DIGITS / "digit_1.png", topk=bad)
    with pytest.raises(minivit.InputError, match="batch_size"):
        minivit.predict(DIGITS / "digit_1.png", batch_size=bad)


def test_weights_file_carries_model_labels_and_preprocessing(tmp_path, small_model):
    labels = [f"class {c}" for c in "abcdefghij"]
    prep = {"resize": 40, "crop": 32, "interpolation": "cv2_bilinear"}
    path = write(tmp_path / "w.safetensors", small_model, labels=json.dumps(labels),
                 preprocessing=json.dumps(prep))
    model = load_model(weights=path)                 # the model name comes from the metadata
    assert model.name == "mobilevitv3_xxs" and class_names(model) == labels
    assert (model.preprocessing.resize, model.preprocessing.crop, model.preprocessing.interpolation) == (40, 32,
                                                                                                      "cv2_bilinear")
    p = preprocess_for(model)
    assert (p.resize, p.crop, p.interpolation) == (40, 32, "cv2_bilinear")
    assert preprocess_for(model, crop=16, interpolation="pil_bicubic").crop == 16
    (top,) = minivit.predict(DIGITS / "digit_4.png", weights=path, topk=2)
    assert top[0][0] in labels
    assert read_metadata(path)["preprocessing"] == json.dumps(prep)


def test_without_metadata_the_config_preprocessing_and_index_labels(tmp_path, small_model):
    model = load_model("mobilevitv3_xxs", write(tmp_path / "w.safetensors", small_model))
    assert model.preprocessing == minivit.models.registry.get_config("mobilevitv3_xxs").preprocessing
    assert class_names(model) == [str(i) for i in range(10)]


def test_a_1000_class_model_gets_imagenet_names():
    model = load_model("mobilevit_xxs", "random")
    names = class_names(model)
    assert len(names) == 1000 and names[0] == "tench" and len(set(names)) == 1000


@pytest.mark.parametrize("prep", ['{"resize": 64, "crop": 65, "interpolation": "pil_bicubic"}',
                                  '{"resize": 64, "crop": 64, "interpolation": "nearest"}',
                                  '{"resize": 64, "crop": 64}', '{"resize": "64", "crop": 64, "interpolation": '
                                  '"pil_bicubic"}', "[64, 64]", "not json"])
def test_bad_preprocessing_metadata_is_refused(tmp_path, small_model, prep):
    with pytest.raises(minivit.InputError, match="metadata 'preprocessing'"):
        write(tmp_path / "w.safetensors", small_model, preprocessing=prep)
    # a file written by other means is refused on reading, naming the file
    from safetensors.numpy import save_file
    path = tmp_path / "other.safetensors"
    save_file(small_model.state_dict(), str(path), metadata={**META, "preprocessing": prep})
    with pytest.raises(minivit.WeightsError, match="other.safetensors: metadata 'preprocessing'"):
        load_model(weights=path)


def test_model_and_weights_choices():
    model = load_model("mobilevitv3_xxs", "random")
    assert load_model(model) is model
    with pytest.raises(minivit.InputError, match="no weights for 'mobilevit_xs'.*minivit convert"):
        load_model("mobilevit_xs")
    with pytest.raises(minivit.InputError, match="needs a model name"):
        load_model(weights="random")
    with pytest.raises(minivit.InputError, match="not with a model object"):
        load_model(model, "random")
    with pytest.raises(minivit.InputError, match="unknown model 'mobilevit_xxxl'"):
        load_model("mobilevit_xxxl", "random")
    with pytest.raises(minivit.WeightsError, match="not 'mobilevit_xxs'"):
        load_model("mobilevit_xxs", SHIPPED_WEIGHTS)


def test_folders_bad_files_and_order(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for d in (3, 1):
        (folder / f"d{d}.png").write_bytes((DIGITS / f"digit_{d}.png").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image")               # not an image suffix: ignored
    (tmp_path / "empty").mkdir()
    pil = Image.open(DIGITS / "digit_8.png")
    items = find_images([folder, pil, tmp_path / "empty", tmp_path / "missing.png"])
    assert [name for name, _ in items] == [str(folder / "broken.png"), str(folder / "d1.png"),
                                           str(folder / "d3.png"), "image 1", str(tmp_path / "empty"),
                                           str(tmp_path / "missing.png")]
    out = list(iter_predictions([folder, pil, tmp_path / "empty", tmp_path / "missing.png"], load_model(),
                                topk=1, batch_size=2))
    assert [name for name, _, _ in out] == [name for name, _ in items]
    errors = {name: str(e) for name, _, e in out if e is not None}
    assert set(errors) == {str(folder / "broken.png"), str(tmp_path / "empty"), str(tmp_path / "missing.png")}
    assert "not an image file" in errors[str(folder / "broken.png")]
    assert "no image files" in errors[str(tmp_path / "empty")]
    assert "no such file" in errors[str(tmp_path / "missing.png")]
    assert [top[0][0] for _, top, e in out if e is None] == ["1", "3", "8"]
    # the plain function raises the first error instead
    with pytest.raises(minivit.ImageError, match="broken.png"):
        minivit.predict(folder)
    with pytest.raises(minivit.InputError, match="expected an image"):
        minivit.predict(42)
