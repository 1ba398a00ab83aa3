"""Streamlit helpers the pages share, one module per job.

format: how statuses, runs, times and shares read · nav: links between pages · state: every
session key that more than one page uses · cache: the one loader cache keyed by file version ·
data: the dataset line, the download button and the cached dataset · augment: augmentation
widgets · gradcam: Grad-CAM views · exports: model downloads · forms: validate-then-launch,
log tails and choice lists shared by Train and Tune · uploads: this session's uploaded files.

Like the pages, nothing here imports Keras or TensorFlow; computation lives in cifarkit.
"""
