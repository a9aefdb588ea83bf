"""Writes scikit-learn's bundled UCI digits (8x8 images, 1797 rows, no download) as JSON: {"x": [[...]], "y": [...]}."""
import json
import sys

from sklearn.datasets import load_digits

digits = load_digits()
with open(sys.argv[1], "w") as f:
    json.dump({"x": digits.data.tolist(), "y": digits.target.tolist()}, f)
