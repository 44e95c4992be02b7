# Copyright (c) OpenMMLab. All rights reserved.
import json
import numbers
from typing import Mapping, Optional


def report_figures(figures: Mapping[str, object],
                   json_file: Optional[str] = None) -> None:
    """Print one ``name: value`` line per figure; optionally write JSON.

    The output convention of every ``tools/analysis_tools/benchmark_*.py``:
    floats with 4 significant digits, integers and strings as they are.

    Args:
        figures (Mapping[str, object]): Figure name -> value.
        json_file (str, optional): Also write the figures to this file.
    """
    plain = {}
    for name, value in figures.items():
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif isinstance(value, numbers.Real):
            value = float(value)
        plain[name] = value
        print(f'{name}: {value:.4g}' if isinstance(value, float) else
              f'{name}: {value}')
    if json_file:
        with open(json_file, 'w') as f:
            json.dump(plain, f, indent=2)
