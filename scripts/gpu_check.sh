#!/usr/bin/env bash
# A GPU machine checked in one call: install ONNX Runtime's GPU build, run the GPU tests, measure the card.
#
#   bash scripts/gpu_check.sh --model DIR [--wheels DIR] [--out DIR] [--folder N] [--rounds N]
#   bash scripts/gpu_check.sh --prepare DIR [--python-version 3.12]
#
# --model DIR    a model folder holding its fp32 ONNX graph, made on any machine with MXNet:
#                python -m ssd export --model models/tiny-pikachu --format onnx --out DIR
#                MXNet is not needed on the GPU machine (numpy 1 or 2, any Python 3.9+).
# --wheels DIR   install from this folder, without a network. A wheel too big to copy in one piece
#                may come as NAME.whl.part-aa, -ab, ... with NAME.whl.sha256: joined and checked here.
#                Without --wheels, pip installs from its index (that needs the network).
# --out DIR      where the results go (default gpu-check/): gpu.md, the table for docs/GPU.md;
#                gpu-tests.log; environment.txt (card, driver, Python, packages, what was installed).
# --folder N     1920x1080 JPEGs for the folder figure (default 640; 0 skips it); --rounds N (default 2).
# --package SPEC the GPU build to install (default onnxruntime-gpu, the newest: CUDA 13; for CUDA 12
#                drivers, onnxruntime-gpu==1.26.0 as in requirements-gpu.txt).
# --prepare DIR  on a machine with pip's index: download what --wheels needs for the GPU machine's
#                Python (onnxruntime-gpu, Pillow, requests, pytest) and split files over 48 MiB into pieces.
#
# onnxruntime-gpu goes into its own folder (.gpu-site, first on PYTHONPATH): it shadows a CPU
# `onnxruntime` of the system without touching it; the packages the machine already has are used.
# A Python without pip gets the wheels of --wheels unpacked there instead.
# Exit status: 0 when the GPU tests passed, 1 when one failed, 2 for bad arguments, 3 when the
# install failed, 4 when the tests skipped (no card listed, say).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
MODEL="" WHEELS="" OUT=gpu-check FOLDER=640 ROUNDS=2 PREPARE="" PYVER=3.12 PACKAGE=onnxruntime-gpu
usage() { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=${2:-}; shift 2 ;;
    --wheels) WHEELS=${2:-}; shift 2 ;;
    --out) OUT=${2:-}; shift 2 ;;
    --folder) FOLDER=${2:-}; shift 2 ;;
    --rounds) ROUNDS=${2:-}; shift 2 ;;
    --prepare) PREPARE=${2:-}; shift 2 ;;
    --python-version) PYVER=${2:-}; shift 2 ;;
    --package) PACKAGE=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# What the GPU run imports beside onnxruntime-gpu: module name and the package that provides it.
NEEDED="numpy:numpy PIL:pillow requests:requests pytest:pytest"

if [ -n "$PREPARE" ]; then
  mkdir -p "$PREPARE"
  "$PY" -m pip download --quiet --only-binary=:all: --python-version "$PYVER" \
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
      --dest "$PREPARE" "$PACKAGE" pillow requests pytest || exit 3
  for whl in "$PREPARE"/*.whl; do
    [ "$(stat -c %s "$whl")" -gt $((48 * 1024 * 1024)) ] || continue
    (cd "$PREPARE" && sha256sum "$(basename "$whl")" > "$(basename "$whl").sha256" \
       && split -b 48M "$(basename "$whl")" "$(basename "$whl").part-" && rm "$(basename "$whl")")
  done
  echo "gpu_check: wheels for Python $PYVER in $PREPARE (pieces of at most 48 MiB):"
  ls -l "$PREPARE"
  exit 0
fi

if [ -z "$MODEL" ] || [ ! -f "$MODEL/model.onnx" ]; then
  echo "gpu_check: --model DIR must hold model.onnx: python -m ssd export --model M --format onnx --out DIR" >&2
  exit 2
fi
case "$FOLDER$ROUNDS" in *[!0-9]*) echo "gpu_check: --folder and --rounds take whole numbers" >&2; exit 2 ;; esac
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) && MODEL=$(cd "$MODEL" && pwd) || exit 2
SITE=${SSD_GPU_SITE:-$REPO/.gpu-site}
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
: > "$OUT/environment.txt"
say() { echo "gpu_check: $*" | tee -a "$OUT/environment.txt" >&2; }

SRC=()
if [ -n "$WHEELS" ]; then
  for first in "$WHEELS"/*.whl.part-aa; do
    [ -e "$first" ] || continue
    whl=${first%.part-aa}
    if [ ! -f "$whl" ]; then
      cat "$whl".part-* > "$whl.joining" && mv "$whl.joining" "$whl" || { say "could not join $whl"; exit 3; }
    fi
    if [ -f "$whl.sha256" ]; then
      (cd "$(dirname "$whl")" && sha256sum --quiet -c "$(basename "$whl").sha256") \
        || { say "$(basename "$whl") does not match its sha256: copy its pieces again"; rm -f "$whl"; exit 3; }
    fi
  done
  SRC=(--no-index --find-links "$WHEELS")
fi
# Without pip (some system Pythons have none), the wheels of --wheels are unpacked instead: each one
# built for this Python whose top-level packages are not importable yet (a wheel is a zip archive).
UNPACK='
import importlib.util, os, sys, sysconfig, zipfile
site, folder = sys.argv[1], sys.argv[2]
tags = {"py3", "py2.py3", "cp%d%d" % sys.version_info[:2]}
plat = sysconfig.get_platform().replace("-", "_")
for name in sorted(os.listdir(folder)):
    if not name.endswith(".whl"):
        continue
    parts = name[:-4].split("-")
    abi3 = parts[-2] == "abi3" and parts[-3].startswith("cp") and int(parts[-3][2:]) <= int("%d%d" % sys.version_info[:2])
    if not (parts[-3] in tags or abi3) or not (parts[-1] == "any" or parts[-1].endswith(plat.split("_", 1)[-1])):
        continue
    forced = name.startswith("onnxruntime_gpu-")      # it replaces the CPU build the system may have
    with zipfile.ZipFile(os.path.join(folder, name)) as whl:
        tops = {n.split("/")[0] for n in whl.namelist() if not n.split("/")[0].endswith((".dist-info", ".data"))}
        tops = {t[:-3] if t.endswith(".py") else t for t in tops}
        tops = {t for t in tops if t.isidentifier()}          # not numpy.libs and such: no modules
        if forced or any(importlib.util.find_spec(t) is None for t in tops):
            whl.extractall(site)
            print("unpacked", name)
'
pip_into_site() {
  if "$PY" -m pip --version >/dev/null 2>&1; then
    PYTHONPATH="" "$PY" -m pip install --quiet --disable-pip-version-check --upgrade --target "$SITE" "$@"
  elif [ -n "$WHEELS" ]; then
    mkdir -p "$SITE" && "$PY" -c "$UNPACK" "$SITE" "$WHEELS"
  else
    say "this Python has no pip: give the wheels with --wheels DIR"; return 1
  fi
}
has_cuda() { "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; }
if has_cuda; then
  say "onnxruntime-gpu already here: $("$PY" -c 'import onnxruntime as o; print(o.__version__, o.__file__)')"
else
  say "installing onnxruntime-gpu into $SITE"
  pip_into_site --no-deps "${SRC[@]}" "$PACKAGE" || { say "pip could not install $PACKAGE"; exit 3; }
  "$PY" -c "import onnxruntime" 2>/dev/null || pip_into_site "${SRC[@]}" "$PACKAGE" \
    || { say "pip could not install what $PACKAGE needs"; exit 3; }
  has_cuda || { say "onnxruntime installed, but it offers no CUDA provider"; exit 3; }
fi
missing=()
for pair in $NEEDED; do
  "$PY" -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} into $SITE"
  pip_into_site "${SRC[@]}" "${missing[@]}" || { say "pip could not install ${missing[*]}"; exit 3; }
fi
# The CUDA and cuDNN libraries: pip's nvidia-* wheels (wherever Python keeps packages) and a system CUDA.
for dir in $("$PY" -c "import site, sys; print(' '.join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))" 2>/dev/null) \
           /usr/local/cuda/lib64 /usr/local/cuda-*/lib64; do
  [ -d "$dir" ] || continue
  for lib in $( { [ -d "$dir/nvidia" ] && find "$dir/nvidia" -maxdepth 3 -type d -name lib; } ; [ -e "$dir/libcudart.so" ] && echo "$dir"); do
    case ":${LD_LIBRARY_PATH:-}:" in *":$lib:"*) ;; *) LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
  done
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

{
  echo "== $(basename "$0") on $(hostname)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if command -v nvidia-smi >/dev/null; then
    echo "card: $(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1 | tr '\n' ';')"
  else
    echo "card: none listed (no nvidia-smi)"
  fi
  echo "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  "$PY" -c "import sys, numpy, onnxruntime as o; print('python', sys.version.split()[0], '| numpy', numpy.__version__,
'| onnxruntime', o.__version__, o.get_available_providers())"
} > "$OUT/environment.part" 2>&1
cat "$OUT/environment.part" | tee -a "$OUT/environment.txt" && rm -f "$OUT/environment.part"

SSD_GPU_MODEL="$MODEL" "$PY" -m pytest -p no:cacheprovider -q -ra tests/test_gpu_onnxruntime.py \
  > "$OUT/gpu-tests.log" 2>&1
status=$?
tail -n 15 "$OUT/gpu-tests.log"
if [ $status -eq 0 ] && grep -q '^SKIPPED' "$OUT/gpu-tests.log"; then
  say "the GPU tests were skipped (reasons above): nothing was checked on a card"
  status=4
fi
"$PY" scripts/bench_gpu.py --model "$MODEL" --folder "$FOLDER" --rounds "$ROUNDS" --md "$OUT/gpu.md" \
  || say "the benchmark failed (the tests' status stands)"
exit $status
