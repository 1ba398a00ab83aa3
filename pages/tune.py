"""Tune: let keras-tuner try many settings of a small CNN, watch the trials, train the best.

The search runs in its own process (cifarkit.searches); this page only writes the TuneConfig and
then reads the search folder every two seconds, so a reload, a closed tab or a second browser all
see the same search.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from cifarkit import charts, rundir, runs, searchdir, searches
from cifarkit.advice import chance_hint
from cifarkit.config import MAX_BLOCKS, OPTIMIZERS, ModelConfig, RunConfig
from cifarkit.describe import HYPERPARAMETER_NAMES, describe_run, format_score, settings_line
from cifarkit.sources import describe_data
from cifarkit.tuneconfig import (
    ALGORITHMS,
    MAX_TRIALS,
    OBJECTIVES,
    TUNABLE_ARCHITECTURE,
    SearchSpace,
    TuneConfig,
)
from ui.actions import SEARCH_ACTIONS, cancel_button, perform
from ui.data import data_line
from ui.format import status_cells, status_column, status_label
from ui.forms import LEARNING_RATES, labelled, launch, rate_text, show_failure, valid
from ui.identity import current_person
from ui.legacy import enter_app
from ui.nav import nav_link
from ui.owners import is_own, owner_label, picker_labels, show_read_only, visible
from ui.state import current_augment_config, current_data_config, focus_run
from ui.waiting import in_line

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

ALGORITHM_NAMES = labelled(ALGORITHMS, {"random": "Random search", "hyperband": "Hyperband",
                                        "bayesian": "Bayesian optimisation"})
OBJECTIVE_NAMES = labelled(OBJECTIVES, {"val_accuracy": "Validation accuracy (higher is better)",
                                        "val_loss": "Validation loss (lower is better)"})
# Widget label for each TuneConfig field a form mistake can hit, so an error names both.
FIELD_LABELS = {"space.base_filters": "Width", "space.optimizers": "Optimizers",
                "space.batch_sizes": "Batch sizes", "space.blocks_max": "Depth",
                "base.data.max_train_images": "Max training images"}
FILTER_CHOICES = (8, 16, 32, 64, 128)
BATCH_SIZES = (16, 32, 64, 128, 256)
# Defaults that finish a useful search in minutes on a laptop CPU: narrow, shallow networks.
CPU_SPACE = SearchSpace(base_filters=(16, 32), blocks_min=2, blocks_max=3, batch_sizes=(32, 64))
DEFAULTS = TuneConfig(space=CPU_SPACE)
DEFAULT_CAP = 5000  # training images per trial: ~10 s per epoch on 2 CPU cores
BEST_EPOCHS = 10  # epochs of the run that trains the best settings
REFRESH_SECONDS = 2


def show_data() -> bool:
    """The dataset line with a link to change it; False (reason shown) when it is not usable."""
    return data_line(current_data_config())


# --- the search form


def space_fields() -> SearchSpace:
    st.markdown("**What to try** (the search space)")
    filters = st.multiselect(
        "Width: filters in the first block", FILTER_CHOICES, list(CPU_SPACE.base_filters),
        key="tune_filters",
        help="How many feature detectors the first convolution block learns; each later block "
        "doubles it. Wider networks can learn more but are slower. The search picks one value "
        "from your choices for each trial.")
    blocks = st.slider(
        "Depth: convolution blocks", 1, MAX_BLOCKS, (CPU_SPACE.blocks_min, CPU_SPACE.blocks_max),
        key="tune_blocks",
        help="How many conv + pooling blocks are stacked (each halves the image side). Deeper "
        "networks see larger shapes. Set both ends equal to keep it fixed.")
    dropout = st.slider(
        "Dropout", 0.0, 0.9, (CPU_SPACE.dropout_min, CPU_SPACE.dropout_max), step=0.05,
        key="tune_dropout",
        help="The share of features randomly silenced while training, against overfitting. "
        "Each trial draws a value from this range.")
    rate = st.select_slider(
        "Learning rate", LEARNING_RATES,
        (CPU_SPACE.learning_rate_min, CPU_SPACE.learning_rate_max), key="tune_lr",
        format_func=rate_text,
        help="Step size of each weight update. Tried on a log scale: 1e-4 and 1e-3 are as likely "
        "as 1e-3 and 1e-2, since what matters is the factor, not the difference.")
    optimizers = st.multiselect(
        "Optimizers", OPTIMIZERS, list(CPU_SPACE.optimizers), key="tune_optimizers",
        help="The rule that turns gradients into weight updates. Adam is forgiving; SGD (with "
        "momentum) needs a higher learning rate but can generalise better.")
    augmentation = st.slider(
        "Augmentation strength", 0.0, 0.5,
        (CPU_SPACE.augmentation_min, CPU_SPACE.augmentation_max), step=0.05,
        key="tune_augmentation",
        help="How far training images are randomly rotated, zoomed and shifted (as a fraction). "
        "More variety fights overfitting, but too much makes the images hard to recognise. "
        "Flips, contrast and brightness stay as chosen on the Data page.")
    batches = st.multiselect(
        "Batch sizes", BATCH_SIZES, list(CPU_SPACE.batch_sizes), key="tune_batches",
        help="Images per weight update. Small batches give more (noisier) updates per epoch; "
        "large ones are faster per image on a GPU.")
    return SearchSpace(
        base_filters=tuple(sorted(filters)), blocks_min=blocks[0], blocks_max=blocks[1],
        dropout_min=round(dropout[0], 3), dropout_max=round(dropout[1], 3),
        learning_rate_min=rate[0], learning_rate_max=rate[1], optimizers=tuple(optimizers),
        augmentation_min=round(augmentation[0], 3), augmentation_max=round(augmentation[1], 3),
        batch_sizes=tuple(sorted(batches)))


def budget_fields() -> dict[str, Any]:
    st.markdown("**How to search**")
    algorithm = st.selectbox(
        "Algorithm", list(ALGORITHM_NAMES), format_func=ALGORITHM_NAMES.get, key="tune_algorithm",
        help="Random search draws every trial at random: simple and hard to beat for a few "
        "trials. Hyperband trains many settings briefly and gives more epochs only to the "
        "promising ones. Bayesian optimisation learns from finished trials where good settings "
        "are likely and tries there next.")
    max_trials = st.number_input(
        "Trials (at most)", 1, MAX_TRIALS, DEFAULTS.max_trials, key="tune_max_trials",
        help="How many settings are tried; each trial trains one network from scratch. "
        "Hyperband may finish with fewer.")
    epochs = st.number_input(
        "Epochs per trial", 1, 100, DEFAULTS.epochs_per_trial, key="tune_epochs_per_trial",
        help="How long each trial trains before it is scored. Few epochs are enough to rank "
        "settings roughly; the winner is trained for longer afterwards. Hyperband: the most "
        "epochs any trial gets.")
    objective = st.selectbox(
        "Objective", list(OBJECTIVE_NAMES), format_func=OBJECTIVE_NAMES.get, key="tune_objective",
        help="How trials are ranked, measured on validation images the trial did not train on "
        "(never the test set, which stays for the final, honest score).")
    return {"algorithm": algorithm, "max_trials": int(max_trials),
            "epochs_per_trial": int(epochs), "objective": objective}


def base_fields() -> tuple[str, RunConfig]:
    """Name, seed, the per-trial image cap and the best run's epochs, as the base RunConfig."""
    spec = current_data_config()
    st.markdown("**Data and speed**")
    default_cap = min(spec.max_train_images or DEFAULT_CAP, DEFAULT_CAP)
    cap = st.number_input(
        "Max training images (0 = all)", 0, 1_000_000, default_cap, step=500, key="tune_cap",
        help="Each trial trains on at most this many images, so the search finishes sooner. "
        "Settings that win on a sample usually win on the full set too. The best run uses the "
        "same data.")
    best_epochs = st.number_input(
        "Epochs when training the best", 1, 500, BEST_EPOCHS, key="tune_best_epochs",
        help="The best settings are later trained as a normal run (with early stopping) for "
        "this many epochs.")
    name = st.text_input("Search name", key="tune_name", placeholder="e.g. width vs depth",
                         help="To find the search later; empty = an automatic id.")
    seed = st.number_input("Seed", 0, 2**31 - 1, DEFAULTS.base.seed, key="tune_seed",
                           help="Fixes which settings are drawn and how each network starts, so "
                           "the same search gives (nearly) the same trials.")
    base = DEFAULTS.base
    base = replace(base, name=name.strip(), seed=int(seed),
                   data=replace(spec, max_train_images=int(cap) or None),
                   augment=current_augment_config(),
                   model=ModelConfig(architecture=TUNABLE_ARCHITECTURE, weights="none"),
                   training=replace(base.training, epochs=int(best_epochs)))
    return name.strip(), base


def search_form() -> None:
    """The search space and budget; on submit, validate and launch (or say what is wrong)."""
    with st.form("tune_form", enter_to_submit=False):
        first, second, third = st.columns(3, gap="large")
        with first:
            space = space_fields()
        with second:
            budget = budget_fields()
        with third:
            name, base = base_fields()
        st.caption(f"Every trial trains **{TUNABLE_ARCHITECTURE}**: convolution blocks whose "
                   "width and depth the search varies, with a dropout head.")
        submitted = st.form_submit_button("Start search", key="tune_start", type="primary",
                                          icon=":material/play_arrow:")
        if not submitted:
            return
        tune = TuneConfig(name=name, base=base, space=space, **budget)
        if not valid(tune, FIELD_LABELS):
            return
    launch(lambda by: searches.launch_search(tune, by=by).search_id, "search", watch_search)


def watch_search(search_id: str) -> None:
    st.session_state["tune_search"] = search_id
    st.session_state["tune_goto_live"] = True


# --- actions (button callbacks: they run before the redraw, which then shows their effect)


def act(action: str, search_id: str) -> None:
    """Stop (or cancel), resume or delete a search as the person signed in; the outcome, or the
    package's refusal, is shown as a toast.

    Only the actions in SEARCH_ACTIONS exist: anything else is an error, never a delete.
    """
    done, text = perform(SEARCH_ACTIONS, action, search_id)
    if done and action == "delete" and st.session_state.get("tune_search") == search_id:
        st.session_state.pop("tune_search")
    st.toast(text, icon=":material/check_circle:" if done else ":material/info:")


def train_best(search_id: str, trial: int, epochs: int) -> None:
    """Launch a normal run with a trial's settings and point the Train page at it."""
    try:
        config = searches.trial_run_config(search_id, trial)
        config = config.with_updates(training=replace(config.training, epochs=epochs))
        run = runs.launch(config, by=current_person())
    except (ValueError, OSError) as error:
        st.session_state["tune_trained"] = (search_id, None, str(error))
        return
    focus_run(run.run_id)  # the Train page opens on its live tab, other pages pick it
    st.session_state["tune_trained"] = (search_id, run.name, None)


def action_buttons(search: searches.Search, column: Any) -> None:
    """Stop (Cancel while queued), Resume, Delete; someone else's search says whose it is."""
    with column:
        if show_read_only(column, search):
            return
        if search.status == "queued":
            cancel_button(column, "search", search.search_id, f"tune_stop_{search.search_id}",
                          act)
            return
        if search.is_active:
            stopping = rundir.stop_requested(search.path)
            st.button("Stopping…" if stopping else "Stop", key=f"tune_stop_{search.search_id}",
                      icon=":material/stop_circle:", disabled=stopping,
                      on_click=act, args=("stop", search.search_id),
                      help="Stops after the current batch. Finished trials are kept; the trial "
                      "that was cut short is not scored. Resume continues the search.")
            return
        if search.can_resume:
            st.button("Resume", key=f"tune_resume_{search.search_id}", type="primary",
                      icon=":material/play_circle:", on_click=act,
                      args=("resume", search.search_id),
                      help="Continue the search in a new process: finished trials are kept and "
                      "a trial that was cut short runs again from its start.")
        with st.popover("Delete", icon=":material/delete:"):
            st.caption("Removes the search folder with all its trials. It cannot be undone; "
                       "runs trained from it are kept.")
            st.button("Delete this search", key=f"tune_delete_{search.search_id}",
                      type="primary", on_click=act, args=("delete", search.search_id))


# --- watching a search (read from disk; the worker process does the training)


def show_progress(search: searches.Search, progress: dict[str, Any]) -> None:
    planned, finished = progress["planned"], progress["finished"]
    share = min(finished / planned, 1.0) if planned else 0.0
    current = progress["current"] if search.is_active else None
    running = f" · trial {current['trial']} running" if current else ""
    st.progress(share, text=f"{finished} of {planned} trials finished{running}")
    if not search.is_active:
        return
    if search.status == "queued":
        st.progress(0.0, text=(in_line(search) or "queued: waiting for a free slot").capitalize())
        return
    if current is None:
        st.progress(0.0, text="Loading the data and starting keras-tuner…")
        return
    st.caption(f"Trial {current['trial']} is trying: "
               f"{settings_line(current, search.config.hyperparameters())}")
    if current.get("steps") and current.get("epoch"):
        epochs = current.get("epochs") or search.config.epochs_per_trial
        st.progress(min(current["step"] / current["steps"], 1.0),
                    text=f"Epoch {current['epoch']} of {epochs} · batch {current['step']} of "
                    f"{current['steps']}")


def show_outcome(search: searches.Search, progress: dict[str, Any]) -> None:
    if search.status == "failed":
        show_failure("search", progress["error"], search.path / searchdir.LOG, "search log")
    elif search.status == "interrupted":
        st.warning("The search process ended without finishing (the computer slept, the server "
                   "restarted or it was killed). Resume continues it.", icon=":material/warning:")
    elif search.status == "cancelled":
        st.info("Cancelled while it waited in line: no trial ran. Resume puts it back at the end "
                "of the line.", icon=":material/cancel:")
    elif search.status == "stopped":
        st.info("The search was stopped. Resume continues it.", icon=":material/stop_circle:")
    if progress["unfinished"]:
        cut = ", ".join(str(trial) for trial in progress["unfinished"])
        st.caption(f"Cut short, not scored: trial {cut}. A resume runs it again.")


def show_best(search: searches.Search, progress: dict[str, Any]) -> None:
    best = progress["best"]
    if best is None:
        return
    objective = progress["objective"]
    score, detail = st.columns([1, 3], vertical_alignment="center")
    score.metric(f"Best {objective.replace('_', ' ')}", format_score(best["score"], objective),
                 help="Of the finished trials, measured on the validation images.")
    detail.markdown(f"**Trial {best['trial']}** " + ("(best so far)" if search.is_active else "")
                    + "  \n" + settings_line(best, search.config.hyperparameters()))


def trials_columns(names: list[str]) -> dict[str, Any]:
    column = st.column_config
    config: dict[str, Any] = {
        "trial": column.NumberColumn("Trial", help="Trials are numbered from 0, like "
                                     "keras-tuner's folders trial_0, trial_1, …"),
        "status": status_column(),
        "epochs": column.NumberColumn("Epochs", help="Epochs the trial trained."),
        "val_accuracy": column.NumberColumn("Val. accuracy", format="percent",
                                            help="At the trial's best epoch."),
        "val_loss": column.NumberColumn("Val. loss", format="%.4f",
                                        help="At the trial's best epoch."),
        "score": None,  # the same number as the objective's column
        "error": column.TextColumn("Error", help="Why a failed trial stopped."),
    }
    formats = {"learning_rate": "%.2e", "dropout": "%.2f", "augmentation": "%.2f"}
    for name in names:
        if name in formats:
            config[name] = column.NumberColumn(HYPERPARAMETER_NAMES[name], format=formats[name])
        else:
            config[name] = column.Column(HYPERPARAMETER_NAMES[name])
    return config


def show_trials(search: searches.Search, progress: dict[str, Any]) -> None:
    table = progress["table"]
    if table.empty:
        st.caption("No trial has finished yet: the table and chart appear after the first one.")
        return
    hint = chance_hint(table, search.info.get("num_classes"))
    if hint:
        st.info(hint, icon=":material/lightbulb:")
    shown = table.assign(status=status_cells(table["status"]))
    if shown["error"].isna().all():
        shown = shown.drop(columns="error")
    st.dataframe(shown, column_config=trials_columns(search.config.hyperparameters()),
                 hide_index=True, key=f"tune_trials_{search.search_id}")
    if table["score"].notna().any():
        st.plotly_chart(charts.trial_scores(table, progress["objective"], progress["direction"]),
                        key=f"tune_chart_{search.search_id}")


def show_train_best(search: searches.Search, progress: dict[str, Any]) -> None:
    """Turn a trial (the best by default) into a normal run, and link to it on Train."""
    best = progress["best"]
    if best is None:
        return
    if search.is_active:
        st.caption("When the search ends you can train its best settings for longer here.")
        return
    sid = search.search_id
    with st.container(border=True):
        st.markdown("**Train the best** for longer, as a normal run")
        scored = progress["table"].dropna(subset=["score"])
        trials = [int(trial) for trial in scored["trial"]]
        best_trial = int(best["trial"])
        choice, epochs_cell = st.columns([3, 1])
        trial = choice.selectbox(
            "Settings of trial", trials, index=trials.index(best_trial),
            key=f"tune_best_trial_{sid}",
            format_func=lambda t: f"trial {t}" + (" (best)" if t == best_trial else ""),
            help="The best trial by default; any finished trial can be trained.")
        config = (searches.best_run_config(search) if trial == best_trial
                  else searches.trial_run_config(search, trial))
        epochs = epochs_cell.number_input(
            "Epochs", 1, 500, config.training.epochs, key=f"tune_best_epochs_{sid}",
            help="A trial trained only a few epochs; the run trains longer (early stopping "
            "ends it when validation stops improving).")
        config = config.with_updates(training=replace(config.training, epochs=int(epochs)))
        st.markdown(f"**{config.name}** · {describe_run(config)}  \n"
                    f"Data: {describe_data(config.data)}")
        with st.expander("The whole run config"):
            st.code(config.to_json(), language="json")
        st.button("Train these settings", key=f"tune_train_{sid}", type="primary",
                  icon=":material/model_training:", on_click=train_best,
                  args=(sid, trial, int(epochs)))
        trained = st.session_state.get("tune_trained")
        if trained and trained[0] == sid:
            if trained[2]:
                st.error(f"Could not start the run: {trained[2]}", icon=":material/error:")
            else:
                st.success(f"Started the run **{trained[1]}**.", icon=":material/rocket_launch:")
                nav_link("pages/train.py", "Watch it on the Train page",
                         ":material/model_training:")


def show_status(search_id: str, polling: bool, finished: int) -> None:
    """Header, buttons and progress: the part redrawn every REFRESH_SECONDS while polling.

    The table, chart and best trial change only when a trial ends, so they are drawn by the full
    page, which this asks to redraw then (and when the search starts or ends).
    """
    try:
        search = searches.load_search(search_id)
    except searches.SearchError:
        st.rerun()  # deleted meanwhile: redraw the picker
    progress = searches.search_progress(search)
    if search.is_active != polling or progress["finished"] != finished:
        st.rerun()
    head, actions = st.columns([5, 1], vertical_alignment="center")
    head.markdown(f"#### {search.name}")
    owner = "" if is_own(search) else f" · {owner_label(search)}'s search"
    head.caption(f"{status_label(search.status)} · {ALGORITHM_NAMES[search.config.algorithm]}"
                 f" · ranked by {search.config.objective.replace('_', ' ')} · "
                 f"{describe_data(search.config.base.data)}{owner}")
    action_buttons(search, actions)
    show_progress(search, progress)
    show_outcome(search, progress)


def show_search(search: searches.Search) -> None:
    progress = searches.search_progress(search)
    polling = progress["status"] in searches.ACTIVE
    with st.container(border=True):
        st.fragment(show_status, run_every=REFRESH_SECONDS if polling else None)(
            search.search_id, polling, progress["finished"])
        show_best(search, progress)
        show_trials(search, progress)
    show_train_best(search, progress)


def search_label(search: searches.Search) -> str:
    best = search.info.get("best_score")
    score = f" · best {format_score(best, search.config.objective)}" if best is not None else ""
    return (f"{search.name} · {ALGORITHM_NAMES[search.config.algorithm]} · "
            f"{search.status}{score}")


def pick_search(every: list[searches.Search]) -> searches.Search:
    """The search launched here or picked before, else the active one, else the newest."""
    by_id = {search.search_id: search for search in every}
    wanted = st.session_state.get("tune_search")
    if wanted not in by_id:
        wanted = next((search.search_id for search in every if search.is_active),
                      every[0].search_id)
    st.session_state["tune_pick"] = wanted

    def remember() -> None:
        st.session_state["tune_search"] = st.session_state["tune_pick"]

    chosen = st.selectbox("Search", list(by_id), key="tune_pick", on_change=remember,
                          format_func=picker_labels(every, search_label).get,
                          help="Your searches, newest first (and other students' where "
                          "the teacher shares them).")
    st.session_state["tune_search"] = chosen
    return by_id[chosen]


def damaged_searches() -> None:
    """Search folders whose settings cannot be read: listed with the reason, so they can go."""
    for item in visible(searches.list_damaged()):
        with st.container(border=True):
            text, button = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"**{item.job_id}** · {status_label(item.status)}")
            text.caption(f"Its settings file cannot be read, so it cannot be shown or resumed: "
                         f"{item.reason}")
            if show_read_only(button, item):
                continue
            with button.popover("Delete", icon=":material/delete:"):
                st.caption("Removes the search folder with all its trials. It cannot be undone.")
                st.button("Delete this search", key=f"tune_delete_{item.job_id}",
                          type="primary", on_click=act, args=("delete", item.job_id))


def live_panel() -> None:
    damaged_searches()
    every = visible(searches.list_searches())
    if not every:
        st.info("No searches yet: set one up in the other tab and press **Start search**.",
                icon=":material/rocket_launch:")
        return
    show_search(pick_search(every))


# --- the page

SETUP, LIVE = "Set up a search", "Searches"

st.title("Tune", anchor=False)
st.caption("Let the computer try many settings and keep the best: a hyperparameter search with "
           "keras-tuner. It runs in the background, so you can close this tab and come back.")
with st.expander("What is a hyperparameter search?", icon=":material/help:"):
    st.markdown(
        "Training learns the network's **weights**; the settings you choose before training "
        "(width, depth, dropout, learning rate, …) are its **hyperparameters**. A search trains "
        "many short *trials*, each with different settings drawn from the ranges below, and "
        "ranks them on validation images. The winner is then trained for longer as a normal "
        "run. Each trial costs a whole (short) training, so keep the ranges and the image cap "
        "small on a laptop.")
current_person()  # a name (or a sign-in) first: searches are launched and shown as theirs
data_ok = show_data()
if st.session_state.pop("tune_goto_live", False) or "tune_tab" not in st.session_state:
    st.session_state["tune_tab"] = LIVE if any(
        search.is_active for search in visible(searches.list_searches())) else SETUP
setup_tab, live_tab = st.tabs([SETUP, LIVE], key="tune_tab", on_change="rerun")
with setup_tab:
    if setup_tab.open and data_ok:
        search_form()
with live_tab:
    if live_tab.open:
        live_panel()
