"""Train: choose a network and its training settings, launch a run, and watch it live.

The run trains in its own process (cifarkit.runs); this page only writes the config and then
reads the run directory every two seconds, so a reload, a closed tab or a second browser all see
the same run.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace

import streamlit as st

from cifarkit import datasets, progress, rundir, runs
from cifarkit.config import (
    MAX_INPUT_SIZE,
    MAX_STEPS_PER_EXECUTION,
    MAX_WARMUP_FRACTION,
    MONITORS,
    OPTIMIZERS,
    POOLINGS,
    SCHEDULES,
    AugmentConfig,
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    TrainingConfig,
    recommended_optimizer,
)
from cifarkit.dataready import data_shape
from cifarkit.models import catalog
from cifarkit.models.memory import training_mb
from cifarkit.sources import describe_data
from ui.actions import RUN_ACTIONS, cancel_button, perform
from ui.augment import augment_controls
from ui.data import data_line, load_dataset
from ui.format import budget_text, clock, format_seconds, percent, status_label
from ui.forms import (
    BUDGET_MINUTES_RANGE,
    CUSTOM_BUDGET_MINUTES,
    LEARNING_RATES,
    LENGTHS,
    budget_seconds,
    distribute_refusal,
    fit_to_budget,
    gpu_count,
    labelled,
    launch,
    rate_text,
    show_failure,
    valid,
    with_default,
)
from ui.identity import current_person
from ui.legacy import enter_app
from ui.live import curves, forget_listing, metrics, planned_epochs, run_listing
from ui.nav import nav_link
from ui.owners import is_own, owner_label, show_read_only, visible
from ui.state import SELECTED_RUN, current_augment_config, current_data_config, focus_run
from ui.uploads import store_upload
from ui.waiting import places

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

KINDS = {"scratch": "Train from scratch", "transfer": "Transfer learning (pretrained network)"}
WEIGHTS = {"imagenet": "ImageNet (pretrained)", "none": "None (random start)",
           "file": "My own .weights.h5 file"}
TRAINABLE = {"all": "All layers", "top": "Top part of the network", "head": "Head only"}
# Every widget starts from the config's own defaults, so the page follows the default recipe
# when it changes. The two below are choices for pretrained networks, which have no defaults of
# their own in RunConfig.
DEFAULTS = RunConfig()
TOP_SHARE_PERCENT = 20  # "Top part of the network": share that learns, when the default is not
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
DENSE_UNITS = (0, 64, 128, 256, 512, 1024)
SCHEDULE_NAMES = labelled(SCHEDULES, {"constant": "Constant", "cosine": "Cosine decay to 0",
                                      "one_cycle": "One cycle (warm up, then decay)",
                                      "linear": "Linear (warm up, then straight down to 0)"})
MONITOR_NAMES = labelled(MONITORS, {"val_loss": "validation loss",
                                    "val_accuracy": "validation accuracy"})
POOLING_NAMES = labelled(POOLINGS, {"avg": "Global average", "max": "Global max",
                                    "flatten": "Flatten"})


# --- the data and the model (outside the form: the choices below depend on them)


def show_data(spec: DataConfig) -> tuple[int, int] | None:
    """The dataset line and its shape, or None (with the reason shown) when it is not usable."""
    if not data_line(spec):
        return None
    try:
        return data_shape(spec, load_dataset)
    except datasets.DatasetError as error:
        st.error(str(error), icon=":material/error:")
        return None


def index_of(choices: list, value: object) -> int:
    """A widget's starting index: the config default's place among its choices (else the
    first, e.g. a weights file path among the weights choices)."""
    return choices.index(value) if value in choices else 0


def choose_architecture() -> tuple[str, catalog.ModelInfo]:
    default = catalog.model_info(DEFAULTS.model.architecture)
    kind = st.radio("Starting point", list(KINDS), format_func=KINDS.get, key="train_kind",
                    horizontal=True, index=index_of(list(KINDS), default.kind),
                    help="From scratch: every weight starts random and is learnt from your images. "
                    "Transfer learning: reuse a network already trained on ImageNet's 1.2 million "
                    "photos and adapt it; often more accurate with few images, but bigger and "
                    "slower.")
    names = catalog.names(kind)
    start = index_of(names, default.name)
    current = st.session_state.get(f"train_arch_{kind}", names[start])
    architecture = st.selectbox(
        "Architecture", names, key=f"train_arch_{kind}", index=start,
        help=f"{catalog.model_info(current).description}. The architecture is the shape of the "
        "network: how many layers, how wide, how they connect.")
    info = catalog.model_info(architecture)
    st.caption(info.description)
    return kind, info


def trainable_part(fraction: float) -> str:
    """The TRAINABLE choice a trainable fraction (the config's default) stands for."""
    return {1.0: "all", 0.0: "head"}.get(fraction, "top")


def choose_transfer() -> tuple[str, float, bool]:
    """Weights, how much of the pretrained network trains, and (head only) feature caching."""
    defaults = DEFAULTS.model
    source = st.radio("Starting weights", list(WEIGHTS), format_func=WEIGHTS.get,
                      key="train_weights", horizontal=True,
                      index=index_of(list(WEIGHTS), defaults.weights),
                      help="ImageNet weights already recognise edges, textures and object parts "
                      "(downloaded once, needs internet). 'None' trains the same architecture "
                      "from random weights.")
    weights = source
    if source == "file":
        weights = _uploaded_weights()
    part = st.radio("Which layers learn", list(TRAINABLE), format_func=TRAINABLE.get,
                    key="train_trainable", horizontal=True,
                    index=list(TRAINABLE).index(trainable_part(defaults.trainable_fraction)),
                    help="Head only: the pretrained network is frozen and only the new "
                    "classifier learns (fast, safe with few images). Top part: also fine-tune the "
                    "last layers. All layers: adapt everything (needs more images and a small "
                    "learning rate).")
    fraction = {"all": 1.0, "head": 0.0}.get(part)
    if fraction is None:
        share = round(100 * defaults.trainable_fraction)
        fraction = st.slider("Share of the network that learns (%)", 5, 95,
                             share if 5 <= share <= 95 else TOP_SHARE_PERCENT, step=5,
                             key="train_trainable_percent",
                             help="The top (last) layers learn the most task-specific features, "
                             "so they are unfrozen first.") / 100
    cache = defaults.cache_features
    if fraction == 0.0:
        cache = st.toggle("Compute the backbone's features once", defaults.cache_features,
                          key="train_cache_features",
                          help="The frozen network gives the same features for the same image "
                          "every epoch, so they are computed once and only the head trains on "
                          "them: much faster epochs.")
    return weights, fraction, cache


def _uploaded_weights() -> str:
    upload = st.file_uploader("Backbone weights (.weights.h5)", type=["h5"],
                              key="train_weights_file",
                              help="Weights saved with model.save_weights() from the same "
                              "architecture and input size, without its top.")
    return "" if upload is None else str(store_upload(upload))  # the worker reads it from disk


def choose_head() -> tuple[str, int, float]:
    with st.expander("Classifier head", icon=":material/hub:"):
        defaults = DEFAULTS.model
        pooling = st.selectbox(
            "Pooling", list(POOLING_NAMES), key="train_pooling", format_func=POOLING_NAMES.get,
            index=index_of(list(POOLING_NAMES), defaults.pooling),
            help="How the feature maps become one vector. Average pooling is the usual choice; "
            "flatten keeps positions but adds many parameters.")
        dense = st.select_slider("Extra dense layer (units)",
                                 with_default(DENSE_UNITS, defaults.dense_units),
                                 value=defaults.dense_units, key="train_dense",
                                 help="0 = none. A hidden layer between features and classes "
                                 "adds capacity (and parameters).")
        dropout = st.slider("Dropout", 0.0, max(0.8, defaults.dropout), defaults.dropout,
                            step=0.05, key="train_dropout",
                            help="Randomly silences this share of features while training, so "
                            "the network cannot rely on any single one: less overfitting.")
    return pooling, dense, dropout


def choose_model() -> tuple[str, ModelConfig]:
    kind, info = choose_architecture()
    size = st.slider("Input size (pixels)", info.min_input, MAX_INPUT_SIZE, info.default_input,
                     key=f"train_input_{info.name}",
                     help=f"Images are resized to this square size inside the model. {info.name} "
                     f"needs at least {info.min_input} px. Pretrained networks saw 224 px photos: "
                     "larger inputs often help them, but cost time (4× the pixels ≈ 4× slower).")
    weights, fraction, cache = (("none", DEFAULTS.model.trainable_fraction,
                                 DEFAULTS.model.cache_features)
                                if kind == "scratch" else choose_transfer())
    pooling, dense, dropout = choose_head()
    return kind, ModelConfig(architecture=info.name, input_size=size, weights=weights,
                             trainable_fraction=fraction, pooling=pooling, dense_units=dense,
                             dropout=dropout, cache_features=cache)


@st.cache_data(show_spinner="Building the model to count its parameters…", max_entries=64)
def model_size(model_json: str, num_classes: int, image_size: int) -> dict[str, float]:
    """describe() for one model config; cached, since building a big network takes seconds."""
    from cifarkit.models.summary import describe  # imports Keras: only once something is shown

    config = RunConfig(model=ModelConfig(**json.loads(model_json)))
    stats = describe(config, num_classes, image_size)
    return {**asdict(stats), "total_params": stats.total_params}


def show_model_size(model: ModelConfig, num_classes: int, image_size: int) -> None:
    if model.weights not in ("imagenet", "none"):
        model = replace(model, weights="imagenet")  # a weights file: pretrained, same shapes
    try:
        stats = model_size(json.dumps(asdict(model), sort_keys=True), num_classes, image_size)
    except ValueError as error:
        st.warning(f"Cannot build this model: {error}", icon=":material/warning:")
        return
    st.metric("Trainable parameters", f"{stats['trainable_params']:,.0f}",
              help="Numbers the training adjusts. More parameters can learn more, but need more "
              "images and time, and overfit more easily.")
    st.metric("Frozen parameters", f"{stats['non_trainable_params']:,.0f}",
              help="Kept as they are: frozen pretrained layers and batch-norm statistics.")
    st.metric("Weights in memory", f"{stats['weights_mb']:,.1f} MB",
              help="Size of all weights as 32-bit floats; about the size of the saved model.")
    memory = training_mb(stats["weights_mb"], stats["trainable_params"], stats["total_params"])
    st.caption(f"Training also keeps gradients and optimizer state: ≈ {memory:,.0f} MB "
               "before activations.")


# --- how long to train (outside the form: the form's fields depend on it)


def choose_length() -> float | None:
    """training.time_budget_s (seconds) for the length chosen; None for a number of epochs."""
    length = st.radio(
        "How long to train", list(LENGTHS), format_func=LENGTHS.get, key="train_length",
        horizontal=True,
        help="With a time budget the run measures its own speed in its first steps, then fits "
        "the number of epochs and the learning-rate schedule so that it ends on time with the "
        "schedule completed (a schedule cut off in the middle loses accuracy). With a number of "
        "epochs you choose how long, and early stopping may end it sooner.")
    minutes = CUSTOM_BUDGET_MINUTES
    if length == "minutes":
        minutes = st.number_input("Minutes of training", *BUDGET_MINUTES_RANGE,
                                  CUSTOM_BUDGET_MINUTES, key="train_budget_minutes",
                                  help="Training time; loading the data before and testing the "
                                  "model after come on top.")
    return budget_seconds(length, minutes)


# --- the training form


def optimizer_fields(architecture: str) -> OptimizerConfig:
    defaults = recommended_optimizer(architecture)  # e.g. small Adam steps for a pretrained net
    st.markdown("**Optimisation**")
    name = st.selectbox("Optimizer", OPTIMIZERS, key=f"train_optimizer_{architecture}",
                        index=index_of(list(OPTIMIZERS), defaults.name),
                        help="The rule that turns each batch's gradients into weight updates. "
                        "Adam is a safe default; SGD with momentum is classic and can generalise "
                        "better with a good schedule.")
    start = defaults.learning_rate
    rate = st.select_slider(
        "Learning rate", with_default(LEARNING_RATES, start), value=start,
        key=f"train_lr_{architecture}", format_func=rate_text,
        help="Step size of each update. Too high: the loss jumps around or explodes. Too low: "
        "learning crawls. Pretrained networks need small rates (1e-4) to keep what they know.")
    schedule = st.selectbox("Learning-rate schedule", list(SCHEDULE_NAMES),
                            format_func=SCHEDULE_NAMES.get, key="train_schedule",
                            index=index_of(list(SCHEDULE_NAMES), defaults.schedule),
                            help="Constant keeps the rate. Cosine lowers it smoothly to 0 by the "
                            "last epoch. One cycle warms up first, then decays: fast training. "
                            "Linear warms up, then goes straight down to 0 at the last step. "
                            "A schedule cannot be combined with 'reduce on plateau'.")
    with st.expander("Optimizer details", icon=":material/tune:"):
        momentum = st.slider("Momentum (SGD, RMSprop)", 0.0, 0.99, defaults.momentum, step=0.01,
                             key="train_momentum",
                             help="Keeps part of the previous update, smoothing the path.")
        nesterov = st.toggle("Nesterov momentum (SGD)", defaults.nesterov, key="train_nesterov",
                             help="Looks ahead before stepping; often a little better.")
        decay = st.number_input("Weight decay (SGD, AdamW)", 0.0, 0.1, defaults.weight_decay,
                                step=1e-4, format="%g", key="train_weight_decay",
                                help="Pulls weights towards 0 each step: a simple brake on "
                                "overfitting.")
        warmup = st.slider("Warm-up (share of all steps, linear schedule)", 0.0,
                           MAX_WARMUP_FRACTION, defaults.warmup_fraction, step=0.05,
                           key="train_warmup",
                           help="The linear schedule starts near 0 and climbs to the learning "
                           "rate over this share of the run: big early steps on random weights "
                           "can wreck them.")
        ema = st.toggle("Average the weights (EMA)", defaults.use_ema, key="train_ema",
                        help="Keeps a moving average of the weights over the last steps and ends "
                        "on it when it validates at least as well: smoother, often a little more "
                        "accurate.")
        ema_momentum = st.slider("Averaging momentum (per step)", 0.9,
                                 max(0.999, defaults.ema_momentum), defaults.ema_momentum,
                                 step=0.001, format="%.3f", key="train_ema_momentum",
                                 help="Closer to 1 averages over more steps (0.99 ≈ the last "
                                 "100).")
    return OptimizerConfig(name=name, learning_rate=rate, momentum=momentum, nesterov=nesterov,
                           weight_decay=decay, schedule=schedule, warmup_fraction=warmup,
                           use_ema=ema, ema_momentum=ema_momentum)


def training_fields(budgeted: bool) -> TrainingConfig:
    """Batch, epochs (for a number of epochs only), steps per epoch, label smoothing."""
    defaults = DEFAULTS.training
    st.markdown("**Length**")
    batch = st.select_slider("Batch size", with_default(BATCH_SIZES, defaults.batch_size),
                             value=defaults.batch_size, key="train_batch",
                             help="Images per weight update. Larger batches run faster per image "
                             "on a GPU but need more memory; smaller ones add helpful noise.")
    epochs = defaults.epochs
    if budgeted:
        st.caption("Epochs: fitted to the time budget once the run has measured its speed.")
    else:
        epochs = st.number_input("Epochs", 1, max(500, defaults.epochs), defaults.epochs,
                                 key="train_epochs",
                                 help="One epoch = every training image seen once. Early "
                                 "stopping can end training sooner.")
    steps = st.number_input("Steps per epoch (0 = one full pass)", 0, 100_000,
                            defaults.steps_per_epoch or 0, step=10, key="train_steps",
                            help="Batches per epoch. 0 goes through all training images once; a "
                            "smaller number gives shorter epochs and more frequent validation.")
    smoothing = st.slider("Label smoothing", 0.0, max(0.3, defaults.label_smoothing),
                          defaults.label_smoothing, step=0.05, key="train_smoothing",
                          help="Trains towards 90 % sure instead of 100 % (at 0.1): a model that "
                          "is less over-confident and often generalises slightly better.")
    return replace(defaults, epochs=int(epochs), batch_size=batch,
                   steps_per_epoch=int(steps) or None, label_smoothing=smoothing)


def callback_fields(budgeted: bool) -> CallbacksConfig:
    """The callbacks; early stopping and reduce-on-plateau only for a number of epochs."""
    defaults = DEFAULTS.callbacks
    st.markdown("**Callbacks**")
    chosen = {}
    if budgeted:
        st.caption(":material/timer: Early stopping and reduce-on-plateau are off: a time "
                   "budget plans the whole run ahead and ends it when its schedule ends.")
    else:
        chosen = early_stopping_fields(defaults) | reduce_fields(defaults)
    checkpoint = st.toggle("Keep only the best model", defaults.checkpoint,
                           key="train_checkpoint",
                           help="Saves the model whenever validation accuracy improves, so the "
                           "run keeps its best epoch (not just its last).")
    return replace(defaults, checkpoint=checkpoint, **chosen)


def early_stopping_fields(defaults: CallbacksConfig) -> dict[str, object]:
    early = st.toggle("Early stopping", defaults.early_stopping, key="train_early",
                      help="Stops when the monitored value has not improved for a while: no "
                      "wasted epochs, less overfitting.")
    monitor = st.selectbox("Watch", list(MONITOR_NAMES), format_func=MONITOR_NAMES.get,
                           key="train_early_monitor",
                           index=index_of(list(MONITOR_NAMES), defaults.early_stopping_monitor),
                           help="What early stopping watches (lower loss or higher accuracy).")
    patience = st.number_input("Patience (epochs)", 1, 100, defaults.early_stopping_patience,
                               key="train_early_patience",
                               help="How many epochs without improvement to tolerate.")
    restore = st.toggle("Restore the best weights", defaults.restore_best_weights,
                        key="train_restore",
                        help="At the end, go back to the weights of the best epoch.")
    return {"early_stopping": early, "early_stopping_monitor": monitor,
            "early_stopping_patience": int(patience), "restore_best_weights": restore}


def reduce_fields(defaults: CallbacksConfig) -> dict[str, object]:
    reduce = st.toggle("Reduce learning rate on plateau", defaults.reduce_lr, key="train_reduce",
                       help="Lowers the learning rate when validation loss stalls: smaller steps "
                       "often find a better minimum. Needs a constant schedule.")
    factor = st.slider("Reduce by factor", 0.1, 0.9, defaults.reduce_lr_factor, step=0.1,
                       key="train_reduce_factor", help="New rate = old rate × factor.")
    patience = st.number_input("Reduce patience (epochs)", 1, 50, defaults.reduce_lr_patience,
                               key="train_reduce_patience",
                               help="Epochs without improvement before lowering the rate.")
    return {"reduce_lr": reduce, "reduce_lr_factor": factor, "reduce_lr_patience": int(patience)}


def run_fields() -> tuple[str, int]:
    st.markdown("**Run**")
    name = st.text_input("Run name", key="train_name", placeholder="e.g. resnet with flips",
                         help="To find the run later; empty = an automatic id.")
    seed = st.number_input("Seed", 0, 2**31 - 1, DEFAULTS.seed, key="train_seed",
                           help="Fixes the random start, shuffling and augmentation, so the "
                           "same settings give (nearly) the same result.")
    return name.strip(), int(seed)


def speed_fields() -> dict[str, object]:
    """How the steps run: TrainingConfig fields that change speed, not what is learnt."""
    defaults = DEFAULTS.training
    refusal = distribute_refusal(gpu_count())
    with st.expander("Speed", icon=":material/speed:"):
        return {
            "steps_per_execution": int(st.number_input(
                "Steps per call", 1, MAX_STEPS_PER_EXECUTION, defaults.steps_per_execution,
                key="train_steps_per_execution",
                help="Batches run per call into the compiled training step: fewer trips "
                "through Python (about +20 % images/s at 16 on a CPU). Progress and the stop "
                "button then act every this many batches.")),
            "mixed_precision": st.toggle(
                "Mixed precision", defaults.mixed_precision, key="train_mixed",
                help="Computes in 16-bit floats: float16 on a GPU (up to 2× faster, less "
                "memory), bfloat16 on a CPU that supports it. Elsewhere the run computes in "
                "32-bit and says why."),
            "jit_compile": st.toggle(
                "XLA compilation", defaults.jit_compile, key="train_xla",
                help="Compiles the model for the hardware: faster on a GPU after a slow first "
                "epoch; slower on a CPU (390 vs 572 images/s measured on one)."),
            "distribute": st.toggle(
                "Spread each batch over all GPUs", defaults.distribute, key="train_distribute",
                disabled=refusal is not None,
                help=refusal or "Each GPU trains on its own batch of this size at once "
                "(TensorFlow's MirroredStrategy): about as many times faster as there are "
                "GPUs."),
        }


def testing_fields(augment: AugmentConfig) -> tuple[AugmentConfig, bool]:
    """Flip test-time augmentation (beside the flips) and temperature calibration."""
    st.markdown("**At test time**")
    tta = st.toggle("Mirror at test time too", augment.flip_tta, key="train_flip_tta",
                    help="Averages each prediction with that of its mirror image: a cheap, "
                    "reliable gain for photos (not for digits or text, where a mirror image is "
                    "another symbol).")
    calibrate = st.toggle("Calibrate the confidence", DEFAULTS.training.calibrate,
                          key="train_calibrate",
                          help="After training, fits one temperature on the validation images "
                          "so that \"90 %\" means right 9 times in 10.")
    return replace(augment, flip_tta=tta), calibrate


def training_form(spec: DataConfig, kind: str, model: ModelConfig,
                  budget_s: float | None) -> None:
    """All the remaining settings; on submit, validate and launch (or say what is wrong)."""
    with st.form("train_form", enter_to_submit=False):
        first, second, third = st.columns(3, gap="large")
        with first:
            optimizer = optimizer_fields(model.architecture)
            training = training_fields(budget_s is not None)
        with second:
            callbacks = callback_fields(budget_s is not None)
            name, seed = run_fields()
            speed = speed_fields()
        with third:
            st.markdown("**Augmentation** (random changes, training only)")
            initial = current_augment_config()
            augment = augment_controls("train_aug_", initial)
            augment, calibrate = testing_fields(replace(augment, flip_tta=initial.flip_tta))
        submitted = st.form_submit_button("Start training", key="train_start", type="primary",
                                          icon=":material/play_arrow:")
        if not submitted:
            return
        training, callbacks = fit_to_budget(replace(training, calibrate=calibrate, **speed),
                                            callbacks, budget_s)
        config = RunConfig(name=name, data=spec, augment=augment, model=model,
                           optimizer=optimizer, training=training, callbacks=callbacks,
                           seed=seed)
        if not valid(config):
            return
    launch(lambda by: runs.launch(config, by=by).run_id, "run", focus_run)


# --- watching runs (read from disk every two seconds; the worker process does the training)


def watched_runs() -> list[runs.Run]:
    """The run launched here or picked on another page (else the newest), then the person's
    own active runs. Others' runs (where the class shows them) are on Runs, read-only: a
    student watches their own work here, and every watched run costs each poll."""
    every = visible(run_listing())  # shared by all sessions, up to a second old
    chosen = st.session_state.get(SELECTED_RUN)
    # The focus is read now: it may have been launched, or have finished, a moment ago.
    focus = (fresh(chosen) if chosen else None) or (fresh(every[0].run_id) if every else None)
    own = [run for run in every
           if run.is_active and is_own(run) and (focus is None or run.run_id != focus.run_id)]
    return ([focus] if focus else []) + own


def fresh(run_id: str) -> runs.Run | None:
    """The run read from disk now, if it exists and the person may see it."""
    try:
        run = runs.load(run_id)
    except runs.RunError:
        return None
    return next(iter(visible([run])), None)


def elapsed(run: runs.Run, rows: list[dict], batch: dict | None) -> float | None:
    """Training seconds so far: the worker's clock, earlier attempts and epoch 1 included."""
    return progress.elapsed_seconds(run.info, rows, batch, time.time(), run.is_active)


def show_queued(wait: str | None) -> None:
    """A queued run's card body: its place in line is all there is (nothing else is read)."""
    st.progress(0.0, text=(wait or "queued: waiting for a free slot").capitalize())


def show_progress(run: runs.Run, rows: list[dict], batch: dict | None) -> None:
    total = planned_epochs(run)  # None: a time budget still measuring the run's speed
    budget = run.config.training.time_budget_s
    spent = elapsed(run, rows, batch)
    if budget is not None:
        st.markdown(f":material/timer: {budget_text(budget, run.info)}")
    where = progress.epoch_progress(total or 0, rows, batch)
    if total:
        st.progress(where.fraction, text=where.epoch_text(run.is_active))
    else:
        st.progress(0.0, text=f"Epoch {where.done + 1}: measuring speed to fit the epochs to "
                    "the budget")
    if where.current:
        st.progress(where.in_epoch,
                    text=f"Batch {where.current['step']} of {where.current['steps']}")
    elif not rows:
        st.progress(0.0, text="Loading the data and building the model…")
    elif total and (where.done >= total or run.info.get("epochs_run", 0) >= total):
        st.progress(1.0, text="Testing the best model on the test set…")
    if budget is not None:
        st.progress(min((spent or 0.0) / budget, 1.0),
                    text=f"{clock(spent)} of the {clock(budget)} budget")
    cells = st.columns(4)
    last = rows[-1] if rows else {}
    cells[0].metric("Training accuracy", percent(last.get("accuracy")))
    cells[1].metric("Validation accuracy", percent(last.get("val_accuracy")),
                    help="On held-back images the model does not train on.")
    cells[2].metric("Elapsed", format_seconds(spent),
                    help="Training time so far, earlier attempts before a stop included.")
    if budget is None:
        cells[3].metric("Time left", format_seconds(progress.time_left(total, rows, batch)),
                        help="At the pace so far; early stopping may end the run sooner.")
    else:
        cells[3].metric("Time left", format_seconds(budget_left(run.info, budget, spent)),
                        help="What the budget's plan leaves: the run ends on time, with its "
                        "learning-rate schedule completed.")


def budget_left(info: dict, budget: float, spent: float | None) -> float | None:
    """Training seconds a budgeted run has left: to its plan once fitted, else to the budget."""
    if spent is None:
        return None
    planned = info.get("budget_planned_seconds")
    end = planned if isinstance(planned, (int, float)) and info.get("budget_epochs") else budget
    return max(end - spent, 0.0)


def show_outcome(run: runs.Run, rows: list[dict]) -> None:
    info = run.info
    if run.status in ("completed", "stopped"):
        accuracy = info.get("test_accuracy")
        verb = "finished and" if run.status == "completed" else "was stopped; its best model"
        st.success(f"**{run.name}** {verb} scored **{percent(accuracy)}** on the test set.",
                   icon=":material/emoji_events:")
        cells = st.columns(4)
        cells[0].metric("Test accuracy", percent(accuracy))
        cells[1].metric("Top-5 accuracy", percent(info.get("test_top5_accuracy")),
                        help="The right class is among the model's five best guesses.")
        cells[2].metric("Epochs", info.get("epochs_run", "–"))
        trained = elapsed(run, rows, None)
        cells[3].metric("Training time", format_seconds(trained))
        budget = run.config.training.time_budget_s
        if budget is not None:
            st.markdown(f":material/timer: {budget_text(budget, info, trained_s=trained)}")
        links = st.columns(2)
        with links[0]:
            nav_link("pages/runs.py", "Compare it with other runs", ":material/monitoring:")
        with links[1]:
            nav_link("pages/errors.py", "See what it gets wrong", ":material/error_med:")
    elif run.status == "failed":
        show_failure("run", info.get("error"), run.path / rundir.LOG, "training log")
    elif run.status == "cancelled":
        st.info("Cancelled while it waited in line: it never started training. Resume puts it "
                "back at the end of the line.", icon=":material/cancel:")
    elif run.status == "interrupted":
        st.warning("The training process ended without finishing (the computer slept, the "
                   "server restarted or it was killed). Resume continues from its last saved "
                   "epoch.", icon=":material/warning:")
    partial = progress.partial_epoch_text(info) if run.status == "stopped" else None
    if partial:
        st.caption(f"Stopped during {partial}; Resume trains it again.")


def request(action: str, run_id: str) -> None:
    """Stop/Cancel/Resume-button callback, as the person signed in: runs before the rerun, so
    the button already reads "Stopping…"; the outcome (or the package's refusal) is a toast."""
    done, text = perform(RUN_ACTIONS, action, run_id)
    forget_listing()  # the next redraw, in any tab, shows the new status
    st.toast(text, icon=":material/check_circle:" if done else ":material/block:")


def resume_button(run: runs.Run, column: st.delta_generator.DeltaGenerator) -> None:
    """Resume for a stopped, interrupted or failed run; disabled with the reason when refused."""
    refusal = rundir.resume_refusal(run.path)
    column.button("Resume", key=f"train_resume_{run.run_id}", icon=":material/play_circle:",
                  on_click=request, args=("resume", run.run_id), disabled=bool(refusal),
                  help=refusal or "Continues from the last saved epoch in a new process.")


def stop_button(run: runs.Run, column: st.delta_generator.DeltaGenerator) -> None:
    """Stop (Cancel while queued) or Resume; someone else's run shows whose it is instead."""
    if show_read_only(column, run):
        return
    if run.can_resume:
        resume_button(run, column)
        return
    if not run.is_active:
        return
    if rundir.stop_requested(run.path):
        column.button("Stopping…", key=f"train_stopping_{run.run_id}", disabled=True)
        return
    if run.status == "queued":
        cancel_button(column, "run", run.run_id, f"train_stop_{run.run_id}", request)
        return
    column.button("Stop", key=f"train_stop_{run.run_id}", icon=":material/stop_circle:",
                  on_click=request, args=("stop", run.run_id),
                  help="Stops after the current batch, then tests the best model so far.")


def show_run(run: runs.Run, wait: str | None = None) -> None:
    """One run's card; `wait` is a queued run's place in line (from one look at the queue)."""
    with st.container(border=True):
        head, action = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"#### {run.name}")
        owner = "" if is_own(run) else f" · {owner_label(run)}'s run"
        head.caption(f"{status_label(run.status)} · {run.config.model.architecture} · "
                     f"{describe_data(run.config.data)}{owner}")
        stop_button(run, action)  # or Resume, for a stopped, interrupted or failed run
        if run.status == "queued":
            show_queued(wait)
            return
        rows, batch = metrics(run)
        if run.is_active:
            show_progress(run, rows, batch)
        else:
            show_outcome(run, rows)
        if rows:
            st.plotly_chart(curves(run), key=f"train_curves_{run.run_id}")
        elif not run.is_active:
            st.caption("No epoch finished, so there are no curves to show.")


def live_panel() -> None:
    """Every watched run; polls the disk every 2 s while any of them is active."""
    active = any(run.is_active for run in watched_runs())

    def panel() -> None:
        watched = watched_runs()
        if not watched:
            st.info("No runs yet: set one up in the other tab and press **Start training**.",
                    icon=":material/rocket_launch:")
            return
        for run, wait in zip(watched, places(watched), strict=True):
            show_run(run, wait)
        if active and not any(run.is_active for run in watched):
            st.rerun()  # everything finished: redraw the page once and stop polling

    st.fragment(panel, run_every=2 if active else None)()


# --- the page

SETUP, LIVE = "Set up a run", "Live training"

st.title("Train", anchor=False)
st.caption("Pick a network, set how it learns, and start: training runs in the background, so "
           "you can close this tab and come back.")
current_person()  # a name (or a sign-in) first: runs are launched and shown as that person's
data_spec = current_data_config()
shape = show_data(data_spec)
if st.session_state.pop("train_goto_live", False) or "train_tab" not in st.session_state:
    st.session_state["train_tab"] = LIVE if st.session_state.get("train_run") or any(
        run.is_active for run in visible(run_listing())) else SETUP
setup_tab, live_tab = st.tabs([SETUP, LIVE], key="train_tab", on_change="rerun")
with setup_tab:
    if setup_tab.open and shape is not None:
        num_classes, image_size = shape
        choice, size_column = st.columns([3, 1], gap="large")
        with choice:
            model_kind, model_config = choose_model()
        with size_column, st.container(border=True):
            st.markdown("**Model size**")
            show_model_size(model_config, num_classes, image_size)
        training_form(data_spec, model_kind, model_config, choose_length())
with live_tab:
    if live_tab.open:
        live_panel()
