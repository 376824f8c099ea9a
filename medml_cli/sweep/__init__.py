"""Reproducible sweeps: many trials from one YAML file, run locally or on Dask, resumable.

A sweep file is an ordinary experiment config (optionally ``base: other.yaml``, read relative
to the sweep file and merged *under* the file's own keys) plus a top-level ``sweep:`` block::

    task: heart-disease
    data: {type: uci-heart-disease, sites: [cleveland]}
    model: {type: random-forest}
    sweep:
      name: heart-disease-models        # default: the file's stem
      grid:                             # cartesian product of dotted parameters
        model.type: [svm, random-forest]
        model.C: [0.1, 1.0]             # not a random-forest field: dropped for those trials
      random:                           # random search, drawn once with its own seed
        trials: 4
        seed: 0
        parameters:
          model.C: {distribution: log-uniform, low: 0.01, high: 10}
          model.n_estimators: {distribution: choice, values: [100, 300]}
      seeds: [0, 1, 2]                  # every trial once per seed (sets `seed`)
      metric: auroc                     # leaderboard metric; default: the task's primary one
      conditions:                       # parameters that only apply to some trials
        model.C: {model.type: [svm, logistic-regression]}

Distributions: ``uniform`` and ``log-uniform`` (``low``, ``high``), ``int-uniform``
(``low``..``high`` inclusive) and ``choice`` (``values``). Trials = grid points x random
draws x seeds. A swept ``model.*`` key that is not a field of a trial's model type is dropped
for that trial (and recorded), as are base ``model`` keys when the grid changes
``model.type``. Every trial is a complete, validated config; its id is the first 12 hex
digits of the sha256 of its resolved YAML, so identical trials collapse into one and ids are
stable across machines and invocations. Relative paths (``data.path``) resolve against the
sweep file's folder.

Each trial runs ``python -m medml_cli --quiet train configs/<id>.yaml --runs-dir trials
--name t-<id> --json`` in its own process, so a crashing trial cannot take the sweep down.
The process is forked from a warm server that imported medml, pandas and scikit-learn once
(:mod:`medml_cli.sweep.warm`; one per local session, one per Dask worker), so trials do not
pay an interpreter's start-up; ``MEDML_SWEEP_FRESH=1`` or ``--fresh-processes`` starts a
fresh interpreter per trial instead (also the fallback without ``fork()``).
The sweep folder ``<runs_dir>/<YYYYmmdd-HHMMSS>-sweep-<name>/`` holds ``sweep.yaml`` (the
file as given, overrides applied), ``configs/<id>.yaml``, ``trials/`` (ordinary run folders),
``logs/<id>.log`` (each trial's stdout and stderr), ``sweep.json`` (the manifest, rewritten
atomically after every change), ``summary.csv`` and ``leaderboard.csv``.

Executors
---------
``local`` (default): a thread pool of ``workers`` threads, each driving one trial process.
When ``workers > 1`` each trial's BLAS/OpenMP thread count is capped at cores / workers
(unless already set), so parallel trials do not oversubscribe the CPU.

``dask``: one task per trial on a ``distributed`` cluster; the task runs the same command on
the worker. Without ``scheduler`` medml starts a ``LocalCluster(n_workers=workers,
threads_per_worker=1, processes=True)`` and stops it afterwards. With ``scheduler`` it
connects to an existing one: ``tcp://host:8786`` or a scheduler file (``dask scheduler
--scheduler-file sched.json``). Workers must see the sweep folder at the same path (a shared
filesystem) and have medml installed.

Slurm / PBS via dask-jobqueue (not a medml dependency; ``pip install dask-jobqueue``)::

    # on the login node, in a long-lived Python session or script
    from dask_jobqueue import SLURMCluster          # or PBSCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00",
                           queue="short", job_extra_directives=["--cpus-per-task=1"])
    cluster.scale(jobs=16)                           # or cluster.adapt(maximum_jobs=32)
    print(cluster.scheduler_address)                 # tcp://10.0.0.5:8786

    medml sweep sweep.yaml --executor dask --scheduler tcp://10.0.0.5:8786 --runs-dir /shared/runs

or without Python: ``dask scheduler --scheduler-file /shared/sched.json`` on the login node,
``sbatch --array=1-16 --wrap "dask worker --scheduler-file /shared/sched.json --nthreads 1"``,
then ``--scheduler /shared/sched.json``.

Resume
------
``resume=SWEEP_DIR`` re-reads ``sweep.json``: completed trials whose run folder still holds a
completed run are skipped; failed, interrupted, pending and running-but-dead trials run
again (a completed run folder left by a trial whose sweep was killed before it could record
it is adopted instead of re-run). ``fail_fast`` stops starting trials after the first
failure; trials not started stay ``pending``.

One process at a time: a sweep session holds an exclusive ``flock`` on ``sweep.lock`` in its
folder (the file names the holder's pid, host and start time), so a second ``--resume`` of a
running sweep is refused (exit 2) instead of running its pending trials again; the kernel
drops the lock when its holder dies, so a killed sweep never blocks. A damaged ``sweep.json``
or trial config is refused field by field (exit 2) before anything runs.

Stopping: Ctrl-C or SIGTERM (``errors.Terminated``) stops every running trial process and its
children (a moment to stop on their own, then SIGTERM, then SIGKILL after
:data:`STOP_GRACE` s), on the local pool and on Dask workers (an abort file in the sweep
folder), records them ``interrupted`` for ``--resume``, and exits 130 (143 for SIGTERM).
"""

from medml_cli.sweep.expand import describe_trials, expand_sweep, sweep_size, trial_id
from medml_cli.sweep.manifest import leaderboard, summary_rows
from medml_cli.sweep.runner import run_sweep
from medml_cli.sweep.spec import Sweep, SweepBlock, SweepResult, Trial

__all__ = ["Sweep", "SweepBlock", "SweepResult", "Trial", "describe_trials", "expand_sweep",
           "leaderboard", "run_sweep", "summary_rows", "sweep_size", "trial_id"]
