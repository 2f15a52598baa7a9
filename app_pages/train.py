"""Train: choose data and settings, start a background training process, watch it, stop or resume it,
and inspect every saved model. The job is a separate process (ssd.jobs), so reruns, page switches and
browser refreshes neither stop nor duplicate it."""
from __future__ import annotations

import dataclasses
import os
import time

import pandas as pd
import streamlit as st

from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd import jobs
from ssd.base.errors import SSDError
from ssd.models.registry import architectures, recipe_for
from ssd.store import is_pretrained_detector
from ssd.workspace import data_dir, dataset_folders, folder_stamp, models_dir
from ssd.training.config import TrainConfig, resolve_defaults

AUTO = "auto"

SYNTH_NAME = "synthetic-pikachu"

st.title("Train")
root = models_dir()
data_root = data_dir()
job = jobs.current_job(root)
if job is None:
    st.session_state.pop("train_stopping", None)


@st.cache_data(show_spinner="Reading the dataset…", max_entries=32)
def dataset_summary(path: str, stamp: float):
    from ssd.data.dataset import open_dataset
    from ssd.data.summary import summarize

    splits = open_dataset(path)
    return splits.describe(), summarize(splits)


@st.cache_resource(show_spinner="Plotting box statistics…", max_entries=8)
def box_stats_figure(path: str, stamp: float):
    from ssd.data.dataset import open_dataset
    from ssd.data.summary import plot_box_stats

    return plot_box_stats(open_dataset(path))


def _start() -> None:
    """Form callback (runs before the script, so the page it then draws already sees the job)."""
    ss = st.session_state
    data = ss.get("train_data_path", "") if ss.get("train_dataset") == OTHER else ss.get("train_dataset")
    name = (ss.get("train_name") or "").strip()
    problem = jobs.valid_model_name(name)
    out = os.path.join(root, name)
    if problem:
        ss["train_start_error"] = f"Model name: {problem}"
        return
    if os.path.exists(os.path.join(out, "meta.json")) or jobs.can_resume(out):
        ss["train_start_error"] = f"`{out}` already holds a model or a run: choose another name, or resume it below."
        return
    cfg = TrainConfig(data=os.path.abspath(data or ""), out=out, arch=ss["train_arch"], epochs=int(ss["train_epochs"]),
                      batch_size=int(ss["train_batch"]), lr=float(ss["train_lr"]) or None,
                      input_size=None if ss["train_input"] == AUTO else int(ss["train_input"]),
                      seed=int(ss["train_seed"]), device=ss["train_device"], augment=bool(ss["train_augment"]),
                      precision=ss.get("train_precision", "auto"),
                      default=bool(ss["train_default"]), quantize=bool(ss.get("train_quantize", False)),
                      limit_train=int(ss["train_limit"]) or None,
                      limit_val=int(ss["train_limit_val"]) or None, max_iters_per_epoch=int(ss["train_max_iters"]) or None)
    start = ss.get("train_pretrained", "scratch")
    if start in recipe_for(ss["train_arch"]).pretrained_choices:
        cfg.pretrained = start
    elif start in pulled:  # a ready-made detector from `models pull`: its own architecture
        cfg.pretrained, cfg.arch = pulled[start].path, pulled[start].meta["arch"]
    try:
        resolved = dataclasses.replace(cfg)  # check early; the job itself resolves and records the defaults
        resolve_defaults(resolved)
        resolved.validate()
        info = jobs.start_job(root, cfg)
    except (SSDError, OSError) as err:
        ss["train_start_error"] = str(err)
        return
    ss["train_run"] = info.out
    ss["train_name"] = f"ssd-{time.strftime('%Y%m%d-%H%M%S')}"
    ss["train_started"] = f"Training {info.name} started (pid {info.pid})."


# ------------------------------------------------------------------------------------ dataset
st.header("1 · Data")
folders = dataset_folders(data_root)
with st.expander("Make a synthetic Pikachu dataset (offline, about 10 ms per image)", expanded=not folders):
    with st.form("synth_form", border=False):
        g1, g2, g3, g4 = st.columns(4)
        synth_name = g1.text_input("Folder name", SYNTH_NAME, key="synth_name")
        n_train = g2.number_input("Training images", 1, 100_000, 1000, 100, key="synth_train")
        n_val = g3.number_input("Validation images", 0, 20_000, 100, 50, key="synth_val")
        synth_seed = g4.number_input("Seed", 0, 2**31 - 1, 0, key="synth_seed")
        make = st.form_submit_button("Generate")
    if make:
        problem = jobs.valid_model_name(synth_name)
        if problem:
            st.error(f"Folder name: {problem}")
        else:
            from ssd.data.synthetic import generate

            target = os.path.join(data_root, synth_name)
            bar = st.progress(0.0, text="Drawing images…")

            def _progress(done: int, total: int) -> None:
                if done % 25 == 0 or done == total:
                    bar.progress(done / total, text=f"Drawing images… {done}/{total}")

            try:
                t0 = time.perf_counter()
                info = generate(target, int(n_train), int(n_val), int(synth_seed), progress=_progress)
                st.session_state["train_dataset"] = target
                st.success(f"Wrote {info['num_train']} training and {info['num_val']} validation images to "
                           f"`{target}` in {time.perf_counter() - t0:.1f} s.")
                folders = dataset_folders(data_root)
            except (SSDError, OSError) as err:
                st.error(f"Could not generate the dataset: {err}")

DATA_LABELS = {"pikachu": "official Pikachu (RecordIO, ~90 MB)", "banana": "d2l bananas (~15 MB)",
               "ena24": "ENA24 camera traps (LILA: 3.6 MB metadata + 3.6 GB images)"}


@st.fragment(run_every=2.0)
def _download_status() -> None:
    """Follows a background download (``python -m ssd data KIND``); reruns only this fragment."""
    dl = jobs.current_data_job(data_root)
    if dl is not None:
        st.info(f"Downloading **{dl.name}** in the background (pid {dl.pid}); you can leave this page.")
        st.code(jobs.read_log_tail(dl.out, 6, jobs.DATA_LOG_FILE) or "starting…")
        return
    last = st.session_state.get("dl_last")
    if last:
        try:
            from ssd.data.dataset import open_dataset

            st.success(f"Ready: {open_dataset(last).describe()}")
        except SSDError:
            st.error("The download did not finish. Its log:")
            st.code(jobs.read_log_tail(last, 12, jobs.DATA_LOG_FILE))


with st.expander("Download a real dataset (needs the internet; checksums verified, resumable)"):
    k1, k2 = st.columns([2, 2])
    dl_kind = k1.selectbox("Dataset", jobs.DATA_KINDS, format_func=DATA_LABELS.get, key="dl_kind")
    meta_only = dl_kind == "ena24" and k2.checkbox("Metadata only (no images)", key="dl_meta_only")
    if st.button("Download", key="dl_start", disabled=jobs.current_data_job(data_root) is not None):
        target = os.path.join(data_root, dl_kind)
        try:
            jobs.start_data_job(data_root, dl_kind, target, ["--metadata-only"] if meta_only else [])
            st.session_state["dl_last"] = target
        except (SSDError, OSError) as err:
            st.error(str(err))
    _download_status()

OTHER = "__other__"
options = folders + [OTHER]
if st.session_state.get("train_dataset") not in options:
    st.session_state.pop("train_dataset", None)
choice = st.selectbox("Dataset", options, key="train_dataset",
                      format_func=lambda p: "Another folder (type its path)…" if p == OTHER else os.path.basename(p),
                      help=f"Folders found in the data folder `{data_root}` (set SSD_DATA_DIR to change it).")
data_path = choice
if choice == OTHER:
    data_path = st.text_input("Dataset folder", key="train_data_path",
                              placeholder="/path/to/dataset (train.rec + val.rec, or a COCO Camera Traps folder)")
dataset_ok = False
classes = []
if data_path:
    try:
        described, summary = dataset_summary(os.path.abspath(data_path), folder_stamp(data_path))
        dataset_ok = True
        classes = summary["classes"]
        st.success(described, icon=":material/check_circle:")
        with st.expander("Dataset summary"):
            s1, s2 = st.columns(2)
            splits = [s for s in ("train", "val") if s in summary["images"]]
            s1.dataframe(pd.DataFrame({
                "": ["images", "without boxes", "boxes"],
                **{s: [summary["images"][s], summary["images_without_boxes"][s], summary["boxes"][s]] for s in splits},
            }), hide_index=True, width="stretch")
            s2.dataframe(pd.DataFrame([{"class": c, **summary["boxes_per_class"][c]} for c in summary["classes"]]),
                         hide_index=True, width="stretch")
            if summary.get("skipped"):
                st.warning("Skipped or adjusted by the loader: " +
                           ", ".join(f"{k}: {v}" for k, v in summary["skipped"].items()))
            if st.checkbox("Show box sizes and aspect ratios", key="train_boxstats"):
                sh.figure(box_stats_figure(os.path.abspath(data_path), folder_stamp(data_path)))
    except SSDError as err:
        st.error(str(err))
else:
    st.info("Choose or generate a dataset to train on.")

# ------------------------------------------------------------------------------------ settings
st.header("2 · Model and settings")
dev = sh.devices()
st.caption(f"Device (auto): **{dev.summary()}**")
st.session_state.setdefault("train_name", f"ssd-{time.strftime('%Y%m%d-%H%M%S')}")
pulled = {f"{m.name} (pulled detector, sets the architecture)": m for m in sh.list_models()[1]
          if is_pretrained_detector(m.meta)}
with st.form("train_form"):
    a1, a2, a3, a4 = st.columns(4)
    name = a1.text_input("Model name (folder in models/)", key="train_name")
    arch = a2.selectbox("Architecture", architectures(), key="train_arch")
    input_size = a3.selectbox("Input size", [AUTO, 128, 192, 256, 300, 320, 384, 512], index=0, key="train_input",
                              help="auto: the architecture's native size: 256 for TinySSD, 300 or 512 for GluonCV zoo "
                                   "models, 320 for SSDlite. TinySSD needs a multiple of 8.")
    device = a4.selectbox("Device", ["auto", "cpu", "gpu"], key="train_device",
                          help="auto: every GPU that really runs MXNet kernels, else the CPU.")
    b1, b2, b3, b4 = st.columns(4)
    epochs = b1.number_input("Epochs", 1, 1000, 20, key="train_epochs")
    batch_size = b2.number_input("Batch size", 1, 1024, 32, key="train_batch")
    lr = b3.number_input("Learning rate (0 = auto)", 0.0, 10.0, 0.0, 0.001, format="%.4f", key="train_lr",
                         help=f"auto: {recipe_for('tiny').defaults(32)['lr']} with momentum 0.9 for TinySSD (SSD-paper loss), "
                              "0.001 × batch / 32 for GluonCV zoo models, 0.15 × batch / 192 for SSDlite "
                              "(their reference schedules).")
    seed = b4.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
    with st.expander("Quick-run limits and options"):
        q1, q2, q3, q4 = st.columns(4)
        limit_train = q1.number_input("Use only N training images (0 = all)", 0, 10_000_000, 0, key="train_limit")
        limit_val = q2.number_input("Use only N validation images (0 = all)", 0, 10_000_000, 0, key="train_limit_val")
        max_iters = q3.number_input("Max iterations per epoch (0 = all)", 0, 10_000_000, 0, key="train_max_iters")
        augment = q4.checkbox("Augmentation", True, key="train_augment")
        auto_precision, auto_why = sh.training_precision()
        q3.selectbox("Training arithmetic", ["auto", "fp32", "bf16"], key="train_precision",
                     help=f"auto here: {auto_precision} ({auto_why}). bf16 runs "
                          "the convolutions in bfloat16 with float32 master weights: about 1.5× faster on a CPU "
                          "with native bfloat16. The saved model is float32 either way.")
        make_default = q4.checkbox("Make it the app's default model", False, key="train_default")
        q4.checkbox("Quantize to INT8 after training", False, key="train_quantize",
                    help="Then writes an INT8 graph beside the model, calibrated on its own training images; "
                         "Detect uses it when the model's evaluation shows it as accurate and faster.")
        st.selectbox("Start from (GluonCV zoo architectures only)", ["scratch", "imagenet", "voc", "coco", *pulled],
                     key="train_pretrained",
                     help="A detector from the Detect page's download panel (or `python -m ssd models pull`) starts "
                          "with its own architecture, re-headed to your classes. "
                          "Pretrained weights come from GluonCV's model store (~/.mxnet/models); offline, put the "
                          "file there first. Settings left at TinySSD's defaults take GluonCV's reference values.")
    st.form_submit_button("Start training", type="primary", on_click=_start, disabled=job is not None or not dataset_ok)
    if job is not None:
        st.caption(f"A job is running ({job.name}); one at a time per models folder.")

for kind, icon in (("train_start_error", "error"), ("train_started", "toast")):
    msg = st.session_state.pop(kind, None)
    if msg and icon == "error":
        st.error(msg)
    elif msg:
        st.toast(msg, icon=":material/rocket_launch:")


# ------------------------------------------------------------------------------------ the run
def _resume(run_dir: str) -> None:
    try:
        info = jobs.start_job(root, jobs.resume_config(run_dir))
        st.session_state["train_run"] = info.out
    except (SSDError, OSError) as err:
        st.session_state["train_flash"] = str(err)


def _delete(run_dir: str) -> None:
    try:
        jobs.delete_run(root, run_dir)
        st.session_state.pop("train_run", None)
        st.session_state["train_flash"] = f"Deleted {os.path.basename(run_dir)}."
    except (SSDError, OSError) as err:
        st.session_state["train_flash"] = str(err)


def _stop() -> None:
    jobs.stop_job(root)
    st.session_state["train_stopping"] = True


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
    if st.session_state.get("train_flash"):
        st.error(st.session_state.pop("train_flash"))
    run_dir = current.out if running else st.session_state.get("train_run")
    if not run_dir:
        runs = jobs.run_folders(root)
        run_dir = runs[0] if runs else None
    if not run_dir:
        st.caption("No training run yet. Start one above.")
        return
    status = jobs.run_status(run_dir, running=running, started=current.started if current else None)
    name = os.path.basename(run_dir)
    p = status.progress
    if running:
        stopping = st.session_state.get("train_stopping")
        head = f"**{name}** — {'stopping after the current iteration…' if stopping else 'training'} (pid {current.pid})"
        st.markdown(head)
        if p:
            st.progress(jobs.progress_fraction(p), text=jobs.progress_text(p))
        else:
            st.progress(0.0, text="starting (loading MXNet and the dataset)…")
        st.button("Stop", on_click=_stop, key="train_stop", disabled=bool(stopping),
                  help="Ends after the current iteration; the last finished epoch is kept and can be resumed.")
    elif status.state == "external":
        st.markdown(f"**{md_escape(name)}** — training outside the app (pid {(status.start or {}).get('pid')}); "
                    "stop it where it was started (Ctrl-C, or stop the `launch` command).")
        if p:
            st.progress(jobs.progress_fraction(p), text=jobs.progress_text(p))
    else:
        msg = {"done": ("success", "finished"), "stopped": ("info", "stopped (its last epoch is kept)"),
               "error": ("error", "failed"), "interrupted": ("warning", "ended without finishing (killed?)"),
               "new": ("info", "has not started")}[status.state]
        getattr(st, msg[0])(f"Run **{name}** {msg[1]}." + (f" {md_escape(status.message)}" if status.message else ""))
        if status.state in ("stopped", "interrupted") and jobs.can_resume(run_dir):
            st.button("Resume", on_click=_resume, args=(run_dir,), key="train_resume",
                      help="Continue from the last finished epoch with the same settings.")
        if status.state == "done":
            st.caption("The model is in the Detect page's list now.")
        if status.state in ("error", "interrupted", "stopped", "new"):
            st.button("Delete this run", on_click=_delete, args=(run_dir,), key="train_delete",
                      help="Removes the run's folder (log, checkpoints and any saved weights).")
    m1, m2, m3, m4 = st.columns(4)
    last = status.history[-1] if status.history else {}
    pt = p if p and p.get("phase") != "validate" else None   # validation events carry no loss or speed
    m1.metric("Epochs done", f"{len(status.history)}/{(p or {}).get('epochs') or (status.start or {}).get('config', {}).get('epochs', '?')}")
    m2.metric("Loss", f"{(pt or last).get('loss', float('nan')):.4f}" if (pt or last) else "–")
    m3.metric("Samples/s", f"{(pt or last).get('samples_per_s', 0):.1f}" if (pt or last) else "–")
    maps = [h["val_map"] for h in status.history if isinstance(h.get("val_map"), (int, float))]
    m4.metric("Best val mAP", f"{max(maps):.4f}" if maps else "–")
    if status.history:
        from ssd.viz.plots import training_curves_figure

        sh.figure(training_curves_figure(status.history))
        sh.training_metrics_explained(status.history)
    with st.expander("Log"):
        st.code(jobs.train_log_tail(run_dir, 30) or "(empty)")


monitor()

# ------------------------------------------------------------------------------------ saved models
st.header("4 · Saved models")
_, ok, broken, default_path = sh.list_models()
if ok:
    path = sh.model_picker("Model", ok, default_path, key="train_inspect")
    meta = next(m.meta for m in ok if m.path == path)
    i1, i2 = st.columns([2, 3])
    with i1:
        st.markdown("\n".join(
            f"- **{r['field']}**: " + md_escape(r["value"])
            for r in jobs.model_overview(meta)))
        best = (meta.get("metrics") or {}).get("best") or {}
        if best.get("val_ap"):
            st.markdown("**Per-class AP (best epoch, VOC07)**")
            st.dataframe(pd.DataFrame({"class": list(best["val_ap"]),
                                       "AP": [round(v, 4) if isinstance(v, (int, float)) and v == v else None
                                              for v in best["val_ap"].values()]}),
                         hide_index=True, width="stretch")
        if (meta.get("status") in ("stopped", "training") and jobs.can_resume(path)
                and job is None and path != st.session_state.get("train_run")):
            st.button("Resume this run", on_click=_resume, args=(path,), key="train_resume_saved")
    with i2:
        hist = (meta.get("metrics") or {}).get("history") or []
        if hist:
            from ssd.viz.plots import training_curves_figure

            sh.figure(training_curves_figure(hist))
            sh.training_metrics_explained(hist)
            from app_pages._learn import measure_metrics_panel

            measure_metrics_panel(path, meta, hist)
        pr = (meta.get("metrics") or {}).get("pr_curves") or {}
        if pr and best.get("val_ap"):
            from ssd.inference.evaluation import EvalResult
            from ssd.viz.plots import pr_curve_figure

            sh.figure(pr_curve_figure(EvalResult(best.get("val_map", 0.0), best["val_ap"], 0, 0, pr)))
        with st.expander("Full metadata (meta.json)"):
            st.json(meta, expanded=False)
else:
    st.caption("No saved model yet.")
sh.show_broken(broken)
