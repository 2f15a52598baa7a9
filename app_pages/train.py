"""Train: choose data and settings, start a background training process, watch it, stop or resume it,
and inspect every saved model. The job is a separate process (ssd.jobs), so reruns, page switches and
browser refreshes neither stop nor duplicate it.

Read from the bottom: ``main()`` lays out the four sections (1 · Data, in ``_train_data``;
2 · Model and settings; 3 · Run; 4 · Saved models); each panel is one function.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, Optional

import pandas as pd
import streamlit as st

from app_pages import _access
from app_pages import _shared as sh
from app_pages._learn import measure_metrics_panel
from app_pages._train_data import OTHER, data_section
from app_pages._train_start import AUTO, in_page_terms, model_row_ui, start_folder
from ssd.base.text import md_escape, plain_text
from ssd import jobs
from ssd.base.errors import SSDError
from ssd.models.registry import recipe_for
from ssd.workspace import data_dir, models_dir
from ssd.training import defaults
from ssd.training.config import TrainConfig, prepared, start_from, start_label

# How a finished run's state reads: (st message kind, words after "Run NAME").
RUN_OUTCOMES = {"done": ("success", "finished"), "stopped": ("info", "stopped (its last epoch is kept)"),
                "error": ("error", "failed"), "interrupted": ("warning", "ended without finishing (killed?)"),
                "new": ("info", "has not started")}
# Five in one row cut "0.875 / 0.9988" to "0.875 / …" on a laptop with the sidebar open.
METRICS_PER_ROW = 3
RUN_FIGURE_HELP = {"Val micro-F1 / accuracy": "Over anchors, as the ENA24 tutorial defines them (last validated "
                                              "epoch); see `python -m ssd eval`."}


# ------------------------------------------------------------------------------------ 2 · Settings

def _form_config(out: str, folders: Dict[str, object]) -> TrainConfig:
    """The run the form describes: the same ``TrainConfig`` the CLI makes from its flags."""
    ss = st.session_state
    data = ss.get("train_data_path", "") if ss.get("train_dataset") == OTHER else ss.get("train_dataset")
    cfg = TrainConfig(data=os.path.abspath(data or ""), out=out, arch=ss.get("train_arch", "tiny"), epochs=int(ss["train_epochs"]),
                      batch_size=int(ss["train_batch"]), lr=float(ss["train_lr"]) or None,
                      input_size=None if ss.get("train_input", AUTO) == AUTO else int(ss["train_input"]),
                      seed=int(ss["train_seed"]), device=ss["train_device"], augment=bool(ss["train_augment"]),
                      precision=ss.get("train_precision", "auto"),
                      default=bool(ss["train_default"]), quantize=bool(ss.get("train_quantize", False)),
                      limit_train=int(ss["train_limit"]) or None,
                      limit_val=int(ss["train_limit_val"]) or None, max_iters_per_epoch=int(ss["train_max_iters"]) or None)
    pick = start_folder(folders)   # a saved model folder: its architecture and shapes, as `train --pretrained FOLDER`
    start_from(cfg, ss.get("train_pretrained", "scratch"), pick.path if pick is not None else None)
    return cfg


def _start(root: str, folders: Dict[str, object]) -> None:
    """Start's callback (runs before the script, so the page it then draws already sees the job)."""
    ss = st.session_state
    name = (ss.get("train_name") or "").strip()
    problem = jobs.valid_model_name(name)
    out = os.path.join(root, name)
    if problem:
        ss["train_start_error"] = f"Model name: {problem}"
        return
    if jobs.folder_taken(out):
        ss["train_start_error"] = f"`{out}` already holds a model or a run: choose another name, or resume it below."
        return
    cfg = _form_config(out, folders)
    try:
        prepared(dataclasses.replace(cfg))  # check early; the job itself resolves and records the defaults
        info = jobs.start_job(root, cfg)
    except (SSDError, OSError) as err:
        ss["train_start_error"] = in_page_terms(str(err))
        return
    ss["train_run"] = info.out
    ss["train_name"] = f"ssd-{time.strftime('%Y%m%d-%H%M%S')}"
    ss["train_started"] = f"Training {info.name} started (pid {info.pid})."


def schedule_row_ui() -> None:
    """Epochs, batch size, learning rate, seed."""
    b1, b2, b3, b4 = st.columns(4)
    b1.number_input("Epochs", 1, 1000, defaults.EPOCHS, persist_state="session", key="train_epochs")
    b2.number_input("Batch size", 1, 1024, defaults.BATCH_SIZE, persist_state="session", key="train_batch")
    b3.number_input("Learning rate (0 = auto)", 0.0, 10.0, 0.0, 0.001, format="%.4f",
                    persist_state="session", key="train_lr",
                    help=f"auto: {recipe_for('tiny').defaults(32)['lr']} with momentum 0.9 for TinySSD (SSD-paper loss), "
                         "0.001 × batch / 32 for GluonCV zoo models, 0.15 × batch / 192 for SSDlite "
                         "(their reference schedules).")
    b4.number_input("Seed", 0, 2**31 - 1, 0, persist_state="session", key="train_seed")


def options_ui(folders: Dict[str, object]) -> None:
    """Quick-run limits, augmentation, arithmetic, default, INT8, and the starting weights."""
    with st.expander("Quick-run limits and options"):
        q1, q2, q3, q4 = st.columns(4)
        q1.number_input("Use only N training images (0 = all)", 0, 10_000_000, 0,
                        persist_state="session", key="train_limit")
        q2.number_input("Use only N validation images (0 = all)", 0, 10_000_000, 0,
                        persist_state="session", key="train_limit_val")
        q3.number_input("Max iterations per epoch (0 = all)", 0, 10_000_000, 0,
                        persist_state="session", key="train_max_iters")
        q4.checkbox("Augmentation", True, persist_state="session", key="train_augment")
        auto_precision, auto_why = sh.training_precision()
        q3.selectbox("Training arithmetic", ["auto", "fp32", "bf16"], key="train_precision", persist_state="session",
                     help=f"auto here: {auto_precision} ({auto_why}). bf16 runs "
                          "the convolutions in bfloat16 with float32 master weights: about 1.5× faster on a CPU "
                          "with native bfloat16. The saved model is float32 either way.")
        q4.checkbox("Make it the app's default model", False, persist_state="session", key="train_default")
        q4.checkbox("Quantize to INT8 after training", False, persist_state="session", key="train_quantize",
                    help="Then writes an INT8 graph beside the model, calibrated on its own training images; "
                         "Detect uses it when the model's evaluation shows it as accurate and faster.")
        st.selectbox("Start from (voc/coco: GluonCV zoo architectures only)", ["scratch", "imagenet", "voc", "coco", *folders],
                     persist_state="session", key="train_pretrained", format_func=plain_text,
                     help="A model folder (a detector from the Detect page's download panel or `python -m ssd "
                          "models pull`, or one trained here) starts with its own architecture, re-headed to "
                          "your classes (those it knows by name keep their weights). "
                          "imagenet: a live ImageNet backbone where one fits exactly (torchvision's VGG16 for "
                          "ssd_300_vgg16_atrous, its ResNet-50 for ssd_512_resnet50_v1b, its MobileNetV3-Large "
                          "for SSDlite). voc/coco: GluonCV's "
                          "detectors, from files already in ~/.mxnet/models (its store has been unreachable since "
                          "2024). Settings left at TinySSD's defaults take GluonCV's reference values.")


def settings_section(root: str, job, dataset_ok: bool) -> None:
    """2 · Model and settings: the settings and the Start button that launches the job (``_start``)."""
    st.header("2 · Model and settings")
    st.caption(f"Device (auto): **{sh.devices().summary()}**")
    st.session_state.setdefault("train_name", f"ssd-{time.strftime('%Y%m%d-%H%M%S')}")
    folders = {label: m for m in sh.list_models()[1] if (label := start_label(m.path))}
    # not an st.form: a form's values stay in the browser until its submit, so a look at another page
    # before Start threw the typed settings away (persist_state keeps only what reached the server)
    with st.container(border=True, key="train_form"):
        model_row_ui(folders)
        schedule_row_ui()
        options_ui(folders)
        st.button("Start training", type="primary", on_click=_start, args=(root, folders), key="train_start",
                  disabled=job is not None or not dataset_ok)
        if job is not None:
            st.caption(f"A job is running ({job.name}); one at a time per models folder.")
    msg = st.session_state.pop("train_start_error", None)
    if msg:
        st.error(msg)
    msg = st.session_state.pop("train_started", None)
    if msg:
        st.toast(msg, icon=":material/rocket_launch:")


# ------------------------------------------------------------------------------------ 3 · Run

def _resume(root: str, run_dir: str) -> None:
    try:
        info = jobs.start_job(root, jobs.resume_config(run_dir))
        st.session_state["train_run"] = info.out
    except (SSDError, OSError) as err:
        st.session_state["train_flash"] = ("error", in_page_terms(str(err)))


def _delete(root: str, run_dir: str) -> None:
    try:
        jobs.delete_run(root, run_dir)
        st.session_state.pop("train_run", None)
        st.session_state["train_flash"] = ("success", f"Deleted {os.path.basename(run_dir)}.")
    except (SSDError, OSError) as err:
        st.session_state["train_flash"] = ("error", str(err))


def _stop(root: str, pid: int) -> None:
    jobs.stop_job(root, pid=pid)        # the run this tab showed, not one another tab started since
    st.session_state["train_stopping"] = True


def _shown_run(root: str, current) -> Optional[str]:
    """The run the monitor follows: the running one, else the one just started, else the newest."""
    run_dir = current.out if current is not None else st.session_state.get("train_run")
    if not run_dir:
        runs = jobs.run_folders(root)
        run_dir = runs[0] if runs else None
    return run_dir


def running_panel(root: str, name: str, status: jobs.RunStatus, current) -> None:
    """The job this page started: progress and Stop."""
    p = status.progress
    stopping = st.session_state.get("train_stopping")
    head = f"**{name}** — {'stopping after the current iteration…' if stopping else 'training'} (pid {current.pid})"
    st.markdown(head)
    if p:
        st.progress(jobs.progress_fraction(p), text=jobs.progress_text(p))
    else:
        st.progress(0.0, text="starting (loading MXNet and the dataset)…")
    st.button("Stop", on_click=_stop, args=(root, current.pid), key="train_stop", disabled=bool(stopping),
              help="Ends after the current iteration; the last finished epoch is kept and can be resumed.")


def outcome_panel(root: str, run_dir: str, status: jobs.RunStatus) -> None:
    """A run that is not running: how it ended, Resume and Delete where they apply."""
    kind, words = RUN_OUTCOMES[status.state]
    if status.state == "stopped" and not jobs.can_resume(run_dir):
        words = "stopped before its first epoch ended: nothing was kept"
    getattr(st, kind)(f"Run **{os.path.basename(run_dir)}** {words}."
                      + (f" {md_escape(status.message)}" if status.message else ""))
    if status.state in ("stopped", "interrupted") and jobs.can_resume(run_dir):
        st.button("Resume", on_click=_resume, args=(root, run_dir), key="train_resume",
                  help="Continue from the last finished epoch with the same settings.")
    if status.state == "done":
        st.caption("The model is in the Detect page's list now.")
    if status.state in ("error", "interrupted", "stopped", "new"):
        st.button("Delete this run", on_click=_delete, args=(root, run_dir), key="train_delete",
                  help="Removes the run's folder (log, checkpoints and any saved weights).")


def run_state_panel(root: str, run_dir: str, status: jobs.RunStatus, current) -> None:
    """Running here, running outside the app, or finished."""
    name = os.path.basename(run_dir)
    if current is not None:
        running_panel(root, name, status, current)
    elif status.state == "external":
        st.markdown(f"**{md_escape(name)}** — training outside the app (pid {(status.start or {}).get('pid')}); "
                    "stop it where it was started (Ctrl-C, or stop the `launch` command).")
        if status.progress:
            st.progress(jobs.progress_fraction(status.progress), text=jobs.progress_text(status.progress))
    else:
        outcome_panel(root, run_dir, status)


def _curves_key(history) -> tuple:
    """What the training curves show: the history itself (a digest of it)."""
    import hashlib
    import json

    return ("training curves", hashlib.sha256(json.dumps(history, sort_keys=True, default=str).encode()).hexdigest())


def run_metrics_panel(run_dir: str, status: jobs.RunStatus) -> None:
    """Epochs, loss, speed and best mAP; the training curves and the log."""
    figures = list(jobs.run_figures(status).items())
    for start in range(0, len(figures), METRICS_PER_ROW):
        for col, (label, value) in zip(st.columns(METRICS_PER_ROW), figures[start:start + METRICS_PER_ROW]):
            col.metric(label, value, help=RUN_FIGURE_HELP.get(label))
    if status.history:
        from ssd.viz.plots import training_curve_figures

        sh.cached_figure_columns(_curves_key(status.history), lambda: training_curve_figures(status.history))
        sh.training_metrics_explained(status.history)
    with st.expander("Log"):
        st.code(jobs.train_log_tail(run_dir, 30) or "(empty)")


def run_section(root: str, job) -> None:
    """3 · Run: the current or latest run, polled every 2 s while one trains."""
    st.header("3 · Run")
    # The fragment polls only while a job runs. Whenever what it finds differs from what this full run
    # saw (a job ended, or Resume started one from inside the fragment), it reruns the whole page so
    # polling starts or stops and the model lists refresh.
    st.session_state["train_polling"] = job is not None

    @st.fragment(run_every=2.0 if job is not None or jobs.external_run(root) else None)
    def monitor() -> None:
        current = jobs.current_job(root)
        running = current is not None
        if running != st.session_state.get("train_polling"):
            if not running:
                st.session_state.pop("train_stopping", None)
            st.rerun()
        if st.session_state.get("train_flash"):     # (kind, words): a delete that worked is no error
            kind, words = st.session_state.pop("train_flash")
            getattr(st, kind)(md_escape(words))
        run_dir = _shown_run(root, current)
        if not run_dir:
            st.caption("No training run yet. Start one above.")
            return
        status = jobs.run_status(run_dir, running=running, started=current.started if current else None)
        run_state_panel(root, run_dir, status, current)
        run_metrics_panel(run_dir, status)

    monitor()


# ------------------------------------------------------------------------------------ 4 · Saved models

def model_facts_panel(root: str, path: str, meta: dict, job) -> None:
    """A saved model's overview, its per-class AP, and Resume for an unfinished run."""
    st.markdown("\n".join(f"- **{r['field']}**: " + md_escape(r["value"]) for r in jobs.model_overview(meta)))
    best = (meta.get("metrics") or {}).get("best") or {}
    if best.get("val_ap"):
        st.markdown("**Per-class AP (best epoch, VOC07)**")
        st.dataframe(pd.DataFrame({"class": list(best["val_ap"]),
                                   "AP": [round(v, 4) if isinstance(v, (int, float)) and v == v else None
                                          for v in best["val_ap"].values()]}),
                     hide_index=True, width="stretch")
    if (meta.get("status") in ("stopped", "training") and jobs.can_resume(path)
            and job is None and path != st.session_state.get("train_run")):
        st.button("Resume this run", on_click=_resume, args=(root, path), key="train_resume_saved")


def model_curves_panel(path: str, meta: dict) -> None:
    """A saved model's training curves, its named metrics, its PR curves and meta.json."""
    from ssd.viz.plots import training_curve_figures

    hist = (meta.get("metrics") or {}).get("history") or []
    best = (meta.get("metrics") or {}).get("best") or {}
    if hist:
        sh.cached_figure_columns(_curves_key(hist), lambda: training_curve_figures(hist))
        sh.training_metrics_explained(hist)
        measure_metrics_panel(path, meta, hist)
    pr = (meta.get("metrics") or {}).get("pr_curves") or {}
    if pr and best.get("val_ap"):
        from ssd.inference.evaluation import EvalResult
        from ssd.viz.plots import pr_curve_figure

        sh.cached_figure(("pr curves",) + _curves_key([best, pr])[1:],
                         lambda: pr_curve_figure(EvalResult(best.get("val_map", 0.0), best["val_ap"], 0, 0, pr)))
    with st.expander("Full metadata (meta.json)"):
        st.json(meta, expanded=False)


def saved_models_section(root: str, job) -> None:
    """4 · Saved models: pick one to see its facts and curves."""
    st.header("4 · Saved models")
    _, ok, broken, default_path = sh.list_models()
    if ok:
        path = sh.model_picker("Model", ok, default_path, key="train_inspect")
        meta = next(m.meta for m in ok if m.path == path)
        model_facts_panel(root, path, meta, job)
        model_curves_panel(path, meta)       # full width: its three curves side by side, stacked on a phone
    else:
        st.caption("No saved model yet.")
    sh.show_broken(broken)


def main() -> None:
    _access.require_access("Train")
    st.title("Train")
    root, data_root = models_dir(), data_dir()
    job = jobs.current_job(root)
    if job is None:
        st.session_state.pop("train_stopping", None)
    dataset_ok = data_section(data_root)
    settings_section(root, job, dataset_ok)
    run_section(root, job)
    saved_models_section(root, job)


main()
