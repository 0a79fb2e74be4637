"""Run folders: what a command leaves on disk, and the drivers that train into them.

A *run* here is one folder and the training that fills it (``folder.train_run``: one model;
``sweep_folder.sweep_run``: a grid of models); ``jaxmlp.training.Run`` is the compiled training
program such a driver runs. Modules: ``folder`` (a training run's folder: train, checkpoint,
resume), ``sweep_folder`` (the same for a sweep), ``lifecycle`` (what both share: a new
folder, refusing to overwrite a run, stopping on SIGINT/SIGTERM), ``predict`` (a finished run
read back and scored), ``gradient_check`` (the gradcheck command's model and batch),
``checkpoint`` (atomic, checksummed files with a previous-file fallback), ``plots`` (the
figures; the only matplotlib import) and ``plotter`` (draws them in a worker process). Nothing
is imported here, so a figure worker that imports ``jaxmlp.runs.plots`` does not import JAX.
"""
