"""A job's second script: shipped as a code input of its own (named by its hash) and loaded by its path, so that one
module serves two jobs without a copy (the data job runs the preprocessing, the monitor the metrics). Standard
library only; a script gets this module bundled in (contract/bundle.py)."""
import importlib.util
import sys
from pathlib import Path


def load_script(path: Path, name: str):
    """The module of the script at `path`, registered as `name` (a dataclass finds its module there); loaded once."""
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not Path(path).is_file():
        raise FileNotFoundError(f"no {name} script at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
