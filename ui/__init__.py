"""Streamlit helpers the pages share, one module per job.

format    how statuses, runs, durations and shares read
nav       links between pages and the run picker
state     every session key more than one page uses, and its readers
cache     the one loader cache, keyed by a file's path and version
runfiles  a run's predictions and model through that cache
data      the dataset line, the download button, the cached dataset
augment   augmentation widgets (Data page and Train form)
gradcam   Grad-CAM help, layer choice and cached heatmaps
exports   the model download formats (one table) and their cached conversions
forms     what Train and Tune share: choice labels, validate-then-launch, failed-job view
actions   stop / resume / delete performed from a page's table of actions
images    showing tiny images large
uploads   this session's uploaded files

Like the pages, nothing here imports Keras or TensorFlow; computation lives in cifarkit.
"""
