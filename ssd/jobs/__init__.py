"""Background jobs the app starts: training, dataset downloads and camera-trap batch runs.

Each job is the very ``python -m ssd`` command a user could type, run as a process of its own
(``process``); ``training``, ``data`` and ``camera`` know their command, lock and log. The names
pages use are gathered here so a page needs one import.
"""
from ssd.jobs.camera import (BATCH_CSV, BATCH_LOCK_FILE, BATCH_LOG_FILE, BATCH_PROGRESS, BATCH_RESULTS,
                             BATCH_SETTINGS, DEFAULT_RUN_NAME, PAGE_CHECKPOINT_EVERY, batch_argv, batch_log_tail,
                             batch_progress_fraction, batch_progress_text, batch_runs, batch_settings, batch_status,
                             camera_runs_dir, current_batch_job, finished_results, form_defaults, in_run_folder,
                             results_label, results_to_show, run_results_files, start_batch_job, stop_batch_job)
from ssd.jobs.data import DATA_KINDS, DATA_LOCK_FILE, DATA_LOG_FILE, current_data_job, download_log_tail, start_data_job
from ssd.jobs.process import JobInfo, read_log_tail, valid_model_name
from ssd.jobs.training import (LOCK_FILE, LOG_FILE, RunStatus, can_resume, config_to_argv, current_job, delete_run,
                               external_run, folder_taken, format_duration, model_overview, progress_fraction,
                               progress_text, resume_config, run_figures, run_folders, run_status, start_job,
                               stop_job, train_log_tail)

__all__ = [name for name in dir() if not name.startswith("_")]
