"""The paper's training experiments, reproduced and counted (``docs/reproduction.md``): configurations
(:mod:`.config`), one run (:mod:`.runs`), resumable experiments (:mod:`.runner`) and figures (:mod:`.figures`)."""

from .config import ConfigError, Experiment, GotuExperiment, NetSpec, builtin_names, load_experiment
from .figures import plot_experiment
from .gotu_runs import GotuResult
from .runner import ExperimentResult, run_experiment

__all__ = ["ConfigError", "Experiment", "ExperimentResult", "GotuExperiment", "GotuResult", "NetSpec",
           "builtin_names", "load_experiment", "plot_experiment", "run_experiment"]
