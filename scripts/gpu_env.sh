# Source this after installing requirements-gpu.txt: puts the pip-installed CUDA 11 and CUDA 12
# libraries on the loader path so mxnet-cu112 finds libcudart.so.11.0, libcudnn.so.8 and friends,
# and onnxruntime-gpu libcudart.so.12, libcudnn.so.9.
_site=$(python -c 'import site; print(site.getsitepackages()[0])')
for _d in "$_site"/nvidia/*/lib; do
  case ":${LD_LIBRARY_PATH:-}:" in *":$_d:"*) ;; *) LD_LIBRARY_PATH="$_d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}";; esac
done
export LD_LIBRARY_PATH
python -c 'import mxnet as mx; from ssd.base.device import select_devices; print("MXNet:", select_devices().summary())'
python -c 'from ssd.inference.engines import gpu_provider; from ssd.inference.onnx_engine import onnxruntime_problem as p; print("ONNX Runtime:", p() or ("CUDA provider available" if gpu_provider() else "CPU provider only"))'
