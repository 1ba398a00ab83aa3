"""Runs page: every run in one table, what accuracy costs, learning curves, ensembles, actions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cifarkit import charts, compare, rundir, runs
from ui.actions import RUN_ACTIONS, perform
from ui.exports import EXPORTS, bundle_bytes, export_bytes
from ui.format import run_label, status_cells, status_column, status_label
from ui.identity import current_person
from ui.legacy import enter_app
from ui.model_import import import_section
from ui.nav import nav_link
from ui.owners import (
    is_own,
    owner_label,
    picker_labels,
    read_only_note,
    show_read_only,
    visible,
)
from ui.runfiles import load_predictions
from ui.waiting import in_line, places

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

REFRESH_SECONDS = 5  # table refresh while a run is queued or running
COLUMNS = {
    "name": st.column_config.TextColumn("Run", pinned=True, help="The run's name (Train page)."),
    "model": st.column_config.TextColumn("Model", help="Architecture that was trained; "
                                         "“imported” for a model file brought in from outside."),
    "data": st.column_config.TextColumn("Data", help="Dataset the run learned from."),
    "classes": st.column_config.NumberColumn("Classes", help="How many classes it tells apart."),
    "status": status_column(help="queued → running → completed. Stopped, interrupted and "
                            "cancelled runs can be resumed."),
    "queue": st.column_config.TextColumn(
        "In line", help="A queued run waits for a free slot on the computer: its place in line "
        "and about how long until it starts."),
    "owner": st.column_config.TextColumn("Owner", help="Whose run it is. Only its owner or the "
                                         "teacher can stop, resume or delete it."),
    "accuracy": st.column_config.ProgressColumn(
        "Accuracy", format="percent", min_value=0, max_value=1,
        help="Share of test images whose most probable class is the right one."),
    "top5_accuracy": st.column_config.NumberColumn(
        "Top-5", format="percent", help="Share of test images whose right class is among the "
        "model's five best guesses."),
    "macro_f1": st.column_config.NumberColumn(
        "Macro F1", format="%.3f", help="F1 score (balance of precision and recall) averaged "
        "over classes, so a rare class counts as much as a common one."),
    "ece": st.column_config.NumberColumn(
        "Calibration error", format="percent", help="Expected calibration error on the test "
        "set: how far the stated confidence is from the accuracy (0 % is perfect)."),
    "trainable_params": st.column_config.NumberColumn(
        "Trainable params", format="compact", help="Weights the optimizer changes."),
    "non_trainable_params": st.column_config.NumberColumn(
        "Frozen params", format="compact", help="Weights kept fixed (frozen pretrained layers, "
        "batch-norm statistics)."),
    "params": None,
    "weights_mb": st.column_config.NumberColumn(
        "Weights MB", format="%.2f", help="Memory the weights take (float32: 4 bytes each)."),
    "model_file_mb": st.column_config.NumberColumn(
        "File MB", format="%.2f", help="Size of the saved model.keras file."),
    "train_seconds": st.column_config.NumberColumn(
        "Train time", format="%.1f s", help="Seconds spent in training epochs."),
    "epochs": st.column_config.NumberColumn("Epochs", help="Epochs trained so far."),
    "max_epochs": st.column_config.NumberColumn(
        "of", help="Epochs planned; early stopping may end a run sooner."),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
    "run_id": st.column_config.TextColumn("Folder", help="Folder of the run under runs/."),
    "error": st.column_config.TextColumn("Error", help="Why a failed run stopped."),
}
PINNED_COLUMNS = ["name"]  # always shown: the row's name
# Shown at first: what a student compares; sizes, frozen weights and folders are one click away.
DEFAULT_COLUMNS = ["model", "data", "status", "queue", "accuracy", "top5_accuracy",
                   "train_seconds", "epochs", "max_epochs", "error"]


def show_flash() -> None:
    """The outcome of the last action (set by a button callback, shown after the rerun)."""
    flash = st.session_state.pop("runs_flash", None)
    if flash:
        kind, text = flash
        (st.success if kind == "success" else st.error)(text)


def act(action: str, run_id: str) -> None:
    """Stop (or cancel), resume or delete a run as the person signed in (a button callback,
    so the page redraws afterwards).

    Only the actions in RUN_ACTIONS exist: anything else is an error, never a delete. A stale
    page asking for another student's run gets the package's refusal, and nothing changes.
    """
    done, text = perform(RUN_ACTIONS, action, run_id)
    st.session_state["runs_flash"] = ("success" if done else "error", text)


def damaged_section() -> None:
    """Run folders whose settings cannot be read: listed with the reason, so they can go."""
    damaged = visible(runs.list_damaged())
    if not damaged:
        return
    st.subheader("Damaged runs")
    st.caption("These run folders have a settings file (config.json) that cannot be read, so "
               "they cannot be compared, resumed or used for predictions. Delete them to tidy up.")
    for item in damaged:
        with st.container(border=True):
            text, sure, button = st.columns([4, 1, 1], vertical_alignment="center")
            text.markdown(f"**{item.job_id}** · {status_label(item.status)}")
            text.caption(item.reason)
            if show_read_only(button, item):
                continue
            confirmed = sure.checkbox("I am sure", key=f"runs_damaged_confirm_{item.job_id}",
                                      help="Deleting removes the folder. It cannot be undone.")
            button.button("Delete", key=f"runs_damaged_delete_{item.job_id}",
                          icon=":material/delete:", disabled=not confirmed, on_click=act,
                          args=("delete", item.job_id), help="Tick “I am sure” first.")


def column_label(name: str) -> str:
    """A table column's header as the table shows it (its column_config label)."""
    config = COLUMNS.get(name)
    return (config.get("label") or name) if isinstance(config, dict) else name


def shown_columns(others: bool) -> list[str]:
    """The columns the user picked (a wide table is cut off at the right on a laptop screen);
    the owner is among them at first when the table holds someone else's runs."""
    optional = [name for name, config in COLUMNS.items() if config is not None
                and name not in PINNED_COLUMNS]
    picked = st.multiselect(
        "Columns", optional, default=DEFAULT_COLUMNS + (["owner"] if others else []),
        format_func=column_label,
        key="runs_columns", help="Which facts the table shows. The CSV download always has "
        "every column.")
    return [*PINNED_COLUMNS, *picked]


def runs_frame(shown_runs: list[runs.Run]) -> pd.DataFrame:
    """compare.runs_table, plus whose each run is and a queued run's place in line."""
    return compare.runs_table(shown_runs).assign(
        queue=places(shown_runs),
        owner=[owner_label(run) for run in shown_runs])


def runs_table() -> None:
    """The table of the runs this person sees and its CSV export; refreshes itself while runs
    are active."""
    all_runs = visible(runs.list_runs())
    table = runs_frame(all_runs)
    shown = table.assign(status=status_cells(table["status"]))
    others = not all(is_own(run) for run in all_runs)
    st.dataframe(shown, column_config=COLUMNS, column_order=shown_columns(others),
                 hide_index=True, width="stretch", key="runs_table", placeholder="–")
    st.download_button("Download table (CSV)", table.to_csv(index=False), "cifarkit-runs.csv",
                         "text/csv", icon=":material/download:", on_click="ignore",
                         help="The same table as a spreadsheet file, for a report or a grade book.")
    if any(run.is_active for run in all_runs):
        st.caption(f"Training in progress: this table refreshes every {REFRESH_SECONDS} s.")


def manage(all_runs: list[runs.Run]) -> None:
    """Actions on one run: stop (cancel a queued one), resume, download its model (in several
    formats), delete. Someone else's run is read-only: downloads only, with its owner named."""
    by_id = {run.run_id: run for run in all_runs}
    labels = picker_labels(all_runs, run_label)
    run_id = st.selectbox("Run", list(by_id), format_func=labels.get,
                          key="runs_manage", help="The run the buttons below act on.")
    run = by_id[run_id]
    if run.status == "failed" and run.info.get("error"):
        st.error(f"This run failed: {run.info['error']}")
    waiting = in_line(run)
    if waiting:
        st.info(f"This run is {waiting}.", icon=":material/schedule:")
    note = read_only_note(run)
    if note:
        st.caption(f":material/lock: {note}: only its owner or the teacher can stop, resume or "
                   "delete it.")
    stop_col, resume_col, download_col, delete_col = st.columns(4)
    if not note:
        lifecycle_buttons(run, stop_col, resume_col)
    model_file = run.path / rundir.BEST_MODEL
    download_col.download_button(
        "Model file", data=model_file.read_bytes if run.has_model else b"",
        file_name=f"{run.name}.keras", mime="application/octet-stream",
        icon=":material/download:", disabled=not run.has_model, on_click="ignore",
        key="runs_download", help="The trained Keras model (.keras). Load it anywhere with "
        "keras.saving.load_model(path).")
    with delete_col:
        if not note:
            delete_button(run)
    exports(run)
    with st.expander("Settings of this run"):
        if compare.is_imported(run):
            st.caption("An imported model file: only the data section (the test set it was "
                       "scored on) and the input size describe it; the architecture is whatever "
                       "the file holds.")
        st.json(run.config.to_dict(), expanded=1)


def lifecycle_buttons(run: runs.Run, stop_col: st.delta_generator.DeltaGenerator,
                      resume_col: st.delta_generator.DeltaGenerator) -> None:
    """Stop (Cancel for a run still waiting in line) and Resume."""
    queued = run.status == "queued"
    stop_col.button("Cancel" if queued else "Stop", key="runs_stop",
                    icon=":material/cancel:" if queued else ":material/stop_circle:",
                    disabled=not run.is_active, on_click=act, args=("stop", run.run_id),
                    help="Take the run out of the queue; Resume puts it back in line." if queued
                    else "Ask the training to stop after the current batch. The best model so "
                    "far is kept and the run can be resumed later.")
    resume_col.button("Resume", key="runs_resume", icon=":material/play_circle:",
                      disabled=not run.can_resume, on_click=act, args=("resume", run.run_id),
                      help="Continue a stopped, interrupted, cancelled or failed run from its "
                      "last saved epoch, up to its planned number of epochs.")


def delete_button(run: runs.Run) -> None:
    """Delete, after "I am sure"; refused while the run is queued or running."""
    sure = st.checkbox("I am sure", key=f"runs_confirm_{run.run_id}",
                       disabled=run.is_active, help="Deleting removes the run folder with "
                       "its model and results. It cannot be undone.")
    st.button("Delete", key="runs_delete", icon=":material/delete:", type="primary",
              disabled=run.is_active or not sure, on_click=act, args=("delete", run.run_id),
              help="Stop a run before deleting it." if run.is_active else
              "Tick “I am sure” first.")


def exports(run: runs.Run) -> None:
    """The model in other formats: a bundle at once, TFLite and SavedModel on request."""
    st.markdown("**Export for use elsewhere**")
    bundle_col, *cols = st.columns(1 + len(EXPORTS))
    bundle_col.download_button(
        "Bundle (.zip)", data=(lambda: bundle_bytes(run)) if run.has_model else b"",
        file_name=f"{run.name}.zip", mime="application/zip", icon=":material/folder_zip:",
        disabled=not run.has_model, on_click="ignore", key="runs_download_bundle",
        help="model.keras with labels.txt (class names in output order), config.json and "
        "eval.json: everything needed to use the model in your own Python code.")
    for col, (kind, (label, suffix, mime, text)) in zip(cols, EXPORTS.items(), strict=True):
        with col:
            export_button(run, kind, label, suffix, mime, text)


def export_button(run: runs.Run, kind: str, label: str, suffix: str, mime: str,
                  text: str) -> None:
    """"Prepare …" converts the model (seconds), then a download button hands the file over."""
    prepared = f"runs_prepared_{kind}_{run.run_id}"
    if st.button(f"Prepare {label}", key=f"runs_prepare_{kind}", disabled=not run.has_model,
                 icon=":material/build:", help=text + " Converting takes a few seconds."):
        st.session_state[prepared] = True
    if not st.session_state.get(prepared) or not run.has_model:
        return
    try:
        with st.spinner(f"Converting to {label}…"):
            data = export_bytes(run, kind)
    except (ValueError, OSError, RuntimeError) as error:  # RuntimeError: converter failures
        st.error(f"The {label} export failed: {error}")
        return
    st.download_button(label, data=data, file_name=f"{run.name}{suffix}", mime=mime,
                       icon=":material/download:", on_click="ignore", key=f"runs_download_{kind}",
                       help=f"{len(data) / 2**20:.2f} MB. {text}")


COST_AXES = {"train_seconds": "Training time", "weights_mb": "Memory (weights)",
             "model_file_mb": "Model file size", "params": "Parameters"}


def cost_chart(table: pd.DataFrame) -> None:
    """Accuracy against training time, memory or parameters: is a bigger model worth it?"""
    if table["accuracy"].notna().sum() == 0:
        st.info("This chart appears once a run has finished and been scored on the test set.")
        return
    x = st.radio("Accuracy against", list(COST_AXES), format_func=COST_AXES.get,
                 horizontal=True, key="runs_cost_axis",
                 help="Each dot is a run. Up and to the left is better: more accuracy for less "
                 "time, memory or parameters. Weights memory is what the model needs in RAM; "
                 "the file size is what model.keras takes on disk.")
    st.plotly_chart(charts.runs_scatter(table, x, log_x=x == "params"), key="runs_cost_chart")
    if x == "params":
        st.caption("Log scale: each grid step means ten times more parameters.")


def curves(all_runs: list[runs.Run]) -> None:
    """Validation accuracy and loss per epoch of the chosen runs, overlaid."""
    with_epochs = [run for run in all_runs if run.info.get("epochs_run")]
    if not with_epochs:
        st.info("Learning curves appear after the first finished epoch.")
        return
    names = compare.unique_names(with_epochs)
    chosen = st.multiselect(
        "Runs to compare", list(names), default=list(names)[:3], format_func=names.get,
        key="runs_curves", help="Curves that keep rising are still learning; a validation loss "
        "that turns upward while training loss falls means the model is overfitting.")
    if not chosen:
        return
    data = compare.epoch_curves([run for run in with_epochs if run.run_id in chosen])
    training = st.toggle("Show training curves instead", key="runs_curves_train",
                         help="Training scores are measured on the images the model learns from, "
                         "so they are usually better than validation scores.")
    accuracy, loss = ("accuracy", "loss") if training else ("val_accuracy", "val_loss")
    left, right = st.columns(2)
    left.plotly_chart(charts.overlay_curves(data, accuracy), key="runs_curve_acc")
    right.plotly_chart(charts.overlay_curves(data, loss), key="runs_curve_loss")


def ensemble(all_runs: list[runs.Run]) -> None:
    """Average the predictions of several runs and compare the ensemble with its members."""
    scored = {run.run_id: run for run in all_runs if run.has_predictions}
    st.caption("An ensemble averages the class probabilities of several models. Different "
               "models make different mistakes, so the average is often better than any one.")
    if len(scored) < 2:
        st.info("Train at least two runs on the same data to try an ensemble.")
        return
    names = compare.unique_names(list(scored.values()))
    chosen = st.multiselect("Runs in the ensemble", list(scored), format_func=names.get,
                            key="runs_ensemble", help="Pick two or more runs trained on the same "
                            "classes and test images.")
    if len(chosen) < 2:
        return
    try:
        members = {names[run_id]: load_predictions(scored[run_id]) for run_id in chosen}
        scores, _ = compare.ensemble_scores(members)
    except ValueError as error:
        st.warning(f"These runs cannot be combined: {error}")
        return
    best = scores.iloc[:-1]["accuracy"].max()
    combined = scores.iloc[-1]
    st.metric("Ensemble accuracy", f"{combined['accuracy']:.1%}",
              delta=f"{100 * (combined['accuracy'] - best):+.1f} points vs best member",
              help="Test accuracy of the averaged predictions, compared with the best single run.")
    st.dataframe(scores, hide_index=True, key="runs_ensemble_table", column_config={
        "run": st.column_config.TextColumn("Run"),
        "accuracy": st.column_config.NumberColumn("Accuracy", format="percent"),
        "top5_accuracy": st.column_config.NumberColumn("Top-5", format="percent"),
        "loss": st.column_config.NumberColumn("Loss", format="%.3f"),
        "macro_precision": st.column_config.NumberColumn("Precision", format="%.3f"),
        "macro_recall": st.column_config.NumberColumn("Recall", format="%.3f"),
        "macro_f1": st.column_config.NumberColumn("Macro F1", format="%.3f"),
        "ece": st.column_config.NumberColumn("Calibration error", format="percent"),
    })


st.title("Runs")
st.caption("Every training run in one place: compare them, look at what accuracy costs, and "
           "stop, resume, download, export or delete a run, or import a model file.")
current_person()  # a name (or a sign-in) first: the page shows that person's runs
show_flash()
damaged_section()
all_runs = visible(runs.list_runs())
if not all_runs:
    st.info("No runs yet. Start one on the **Train** page, or import a model file below; it "
            "will show up here.")
    nav_link("pages/train.py", "Go to Train", icon=":material/model_training:")
    st.subheader("Import a model")
    import_section()
    st.stop()

active = any(run.is_active for run in all_runs)
st.fragment(runs_table, run_every=REFRESH_SECONDS if active else None)()

st.subheader("Manage a run")
manage(all_runs)

st.subheader("Compare runs")
cost_tab, curves_tab, ensemble_tab = st.tabs(["Accuracy vs cost", "Learning curves", "Ensemble"])
with cost_tab:
    cost_chart(runs_frame(all_runs))
with curves_tab:
    curves(all_runs)
with ensemble_tab:
    ensemble(all_runs)

st.subheader("Import a model")
import_section()
