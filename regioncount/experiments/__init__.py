"""The paper's training experiments, reproduced and counted (``docs/reproduction.md``): configurations
(:mod:`.config`), sawtooth runs (:mod:`.runs`), the GOTU task (:mod:`.gotu_runs`), the steep task
(:mod:`.steep_runs`), resumable experiments (:mod:`.runner`) and figures (:mod:`.figures`)."""

from .config import ConfigError, Experiment, GotuExperiment, NetSpec, SteepExperiment, builtin_names, load_experiment
from .figures import plot_experiment
from .gotu_runs import GotuResult
from .runner import ExperimentResult, run_experiment
from .steep_runs import SteepResult

__all__ = ["ConfigError", "Experiment", "ExperimentResult", "GotuExperiment", "GotuResult", "NetSpec",
           "SteepExperiment", "SteepResult", "builtin_names", "load_experiment", "plot_experiment", "run_experiment"]
