"""symflow.predictions: every run's per-image results gathered into one file, read back by path."""

from __future__ import annotations

import numpy as np
import pytest

from symflow.h5io import write_h5
from symflow.predictions import Predictions, gather, labels_by_dataset, per_image

DS = "cifar10-sample.0e454ec3-r8-n40.8.20-split0"


def data_file(tmp_path, labels):
    path = tmp_path / "results" / "data" / DS / "identity" / "s0.h5"
    y = np.eye(10)[labels]
    write_h5(path, {"x_test": np.zeros((len(labels), 2, 2, 3), np.float32), "y_test": y.astype(np.float32),
                    "labels_test": labels}, {"kind": "dataset"})
    return path


def output(tmp_path, name, outputs, labels=None):
    path = tmp_path / f"{name}.h5"
    arrays = {"test_outputs": outputs.astype(np.float32)}
    if labels is not None:
        arrays["labels_test"] = labels
    write_h5(path, arrays, {"dataset": DS})
    return path


def test_per_image_values():
    out = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    vals = per_image(out, np.array([0, 0, 0]))
    assert vals["correct"].tolist() == [1, 0, 1]
    assert vals["sq_error"][0] == pytest.approx(((0.9 - 1) ** 2 + 0.1**2) / 2)


def test_gather_and_read_back(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 20)
    data = data_file(tmp_path, labels)
    a, b, ref = (rng.standard_normal((20, 10)) for _ in range(3))
    pa = output(tmp_path, "kernel", a)
    pb = output(tmp_path, "network", b, labels)
    pr = output(tmp_path, "reference", ref)
    out = tmp_path / "predictions.h5"
    counts = gather([pa, pb, pr], labels_by_dataset([data]), [(pb, {"inf": pr})], out)
    assert counts == {DS: 3}
    preds = Predictions.read(out)
    testset, correct = preds.values(str(pa), "correct")
    assert testset == DS and correct.tolist() == (np.argmax(a, 1) == labels).astype(int).tolist()
    _, sq = preds.values(str(pb), "sq_error")
    assert sq == pytest.approx(((b - np.eye(10)[labels]) ** 2).mean(axis=1), rel=1e-5)
    _, sdist = preds.sdist[(str(pb), "inf")]
    assert sdist == pytest.approx(((b.astype(np.float32) - ref.astype(np.float32)) ** 2).sum(axis=1), rel=1e-5)
    with pytest.raises(KeyError):
        preds.values("elsewhere.h5", "correct")


def test_an_output_with_other_labels_is_refused(tmp_path):
    labels = np.arange(20) % 10
    data = data_file(tmp_path, labels)
    bad = output(tmp_path, "network", np.zeros((20, 10)), (labels + 1) % 10)
    with pytest.raises(ValueError, match="test labels"):
        gather([bad], labels_by_dataset([data]), [], tmp_path / "p.h5")
