# Source this after installing requirements-gpu.txt: puts the pip-installed CUDA 11 libraries
# on the loader path so mxnet-cu112 finds libcudart.so.11.0, libcudnn.so.8 and friends.
_site=$(python -c 'import site; print(site.getsitepackages()[0])')
for _d in "$_site"/nvidia/*/lib; do
  case ":${LD_LIBRARY_PATH:-}:" in *":$_d:"*) ;; *) LD_LIBRARY_PATH="$_d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}";; esac
done
export LD_LIBRARY_PATH
python -c 'import mxnet as mx; from ssd.device import select_devices; print(select_devices().summary())'
