"""Pretrained weights from GluonCV's model store, fetched with a SHA-1 check.

The file ``NAME-SHORTSHA1.params`` lives under ``$MXNET_HOME/models`` (default ``~/.mxnet/models``),
checked against GluonCV's own SHA-1 table. A missing or mismatching file is fetched from the
store's URL (``$MXNET_GLUON_REPO`` as GluonCV reads it) with :func:`ssd.data.download.download`
(timeouts, resume, atomic); offline, a :class:`~ssd.base.errors.DownloadError` says which file to
put where.
"""
from __future__ import annotations

import os

from ssd.base.errors import DownloadError, ModelError


def model_store_root() -> str:
    """Where GluonCV keeps weights: ``$MXNET_HOME/models``, else ``~/.mxnet/models``."""
    if "MXNET_HOME" in os.environ:
        return os.path.join(os.path.expanduser(os.environ["MXNET_HOME"]), "models")
    return os.path.expanduser(os.path.join("~", ".mxnet", "models"))


def _store_sha1(name: str) -> str:
    from gluoncv.model_zoo import model_store

    try:
        return model_store._model_sha1[name]
    except KeyError:
        raise ModelError(f"GluonCV publishes no pretrained weights named {name!r}") from None


def weights_file_name(name: str) -> str:
    """``NAME-SHORTSHA1.params``: the file name GluonCV's model store looks for."""
    return f"{name}-{_store_sha1(name)[:8]}.params"


def weights_path(name: str) -> str:
    return os.path.join(model_store_root(), weights_file_name(name))


def weights_url(name: str) -> str:
    from gluoncv.model_zoo import model_store

    repo = os.environ.get("MXNET_GLUON_REPO", model_store.apache_repo_url)
    if not repo.endswith("/"):
        repo += "/"
    return model_store._url_format.format(repo_url=repo, file_name=weights_file_name(name)[:-len(".params")])


def store_gone() -> str:
    """What to say when GluonCV's store fails: since when, and the detectors that can be had instead."""
    from ssd.models.weights.catalogue import LIVE_DETECTORS

    live = ", ".join(f"python -m ssd models pull {name}" for name in LIVE_DETECTORS)
    return ("GluonCV's model store has been unreachable since February 2024 (MXNet was retired in September "
            "2023); a mirror (MXNET_GLUON_REPO) or the file in ~/.mxnet/models still works. Real detectors "
            f"from a live source, converted exactly: {live}.")


def ensure_weights(name: str, download: bool = True, progress=None) -> str:
    """Path of GluonCV's pretrained file ``name`` with the right SHA-1, fetching it if needed.

    ``DownloadError`` when it is missing/wrong and cannot be fetched: the message names the file,
    the folder to put it in, its SHA-1 and the URL of the zip that holds it.
    """
    from ssd.data.archive import safe_extract
    from ssd.data.download import download as fetch, sha1_of_file

    sha1 = _store_sha1(name)
    path = weights_path(name)
    fname = os.path.basename(path)
    root = os.path.dirname(path)
    if os.path.isfile(path):
        got = sha1_of_file(path)
        if got == sha1:
            return path
        problem = f"{path} has SHA-1 {got}, not GluonCV's {sha1} (a partial or different file)"
    else:
        problem = f"{path} does not exist"
    url = weights_url(name)
    by_hand = (f"Put the file {fname} (SHA-1 {sha1}; it is inside {url}) in {root} — GluonCV's model "
               "store folder: ~/.mxnet/models, or $MXNET_HOME/models when MXNET_HOME is set — and run "
               "the same command again.")
    if not download:
        raise DownloadError(f"pretrained weights {name!r} are not available: {problem}. {store_gone()} {by_hand}")
    import shutil

    zip_path = path[:-len(".params")] + ".zip"
    staging = os.path.join(root, ".extract-" + fname)
    try:
        try:
            fetch(url, zip_path, progress=progress)
            extracted = safe_extract(zip_path, staging)
        except DownloadError as err:
            gist = str(err).split(" To install it by hand")[0]
            raise DownloadError(f"pretrained weights {name!r} are not available: {problem}, and fetching "
                                f"them failed: {gist} {store_gone()} {by_hand}") from None
        member = next((m for m in extracted if os.path.basename(m) == fname), None)
        if member is None:
            raise DownloadError(f"{url} does not contain {fname} (it holds {', '.join(extracted) or 'nothing'}). "
                                f"{by_hand}")
        src = os.path.join(staging, *member.split("/"))
        got = sha1_of_file(src)
        if got != sha1:
            raise DownloadError(f"{fname} from {url} has SHA-1 {got}, not GluonCV's {sha1}; it was not "
                                f"installed. {by_hand}")
        os.replace(src, path)  # same folder: atomic, and only a verified file gets the final name
    finally:
        if os.path.exists(zip_path):
            os.remove(zip_path)
        shutil.rmtree(staging, ignore_errors=True)
    return path
