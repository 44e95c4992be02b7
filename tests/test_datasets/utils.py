# Copyright (c) OpenMMLab. All rights reserved.
import shutil

import numpy as np


def copy_root(truth, dst) -> str:
    """A private copy of a generated root, to corrupt."""
    shutil.copytree(truth.root, dst)
    return str(dst)


def entry_boxes(entry) -> np.ndarray:
    return np.array([i['bbox'] for i in entry['instances']],
                    np.float64).reshape(-1, 4)


def entry_pids(entry) -> np.ndarray:
    return np.array([i['person_id'] for i in entry['instances']], np.int64)
