"""Run folders: what a command leaves on disk.

``folder`` trains a run into a folder (config, metrics, checkpoint, timing, figures) and reads
it back, ``sweep_folder`` does the same for a sweep, ``checkpoint`` writes atomically with a
digest and falls back to the previous file, ``plots`` draws the figures (the only matplotlib
import) and ``plotter`` draws them in a worker process. Nothing is imported here, so a figure
worker that imports ``jaxmlp.runs.plots`` does not import JAX.
"""
