"""The CPU a figure was measured on is named well enough to tell the machine kinds apart."""
from ssd.base.hardware import cpu_kind

ZEN5_FLAGS = "fpu avx2 avx512f avx512_vnni avx512_bf16"
SPR_FLAGS = "fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"


def _cpuinfo(tmp_path, vendor, family, model, name, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
                    f"model name\t: {name}\nflags\t\t: {flags}\n")
    return str(path)


def test_amd_zen5_named_by_core(tmp_path):
    kind = cpu_kind(_cpuinfo(tmp_path, "AuthenticAMD", 26, 2, "AMD EPYC", ZEN5_FLAGS))
    assert kind.startswith("AMD EPYC (Zen 5: AVX-512 with VNNI and BF16)")


def test_intel_with_amx_names_family_model_and_amx(tmp_path):
    kind = cpu_kind(_cpuinfo(tmp_path, "GenuineIntel", 6, 143, "Intel(R) Xeon(R) Processor", SPR_FLAGS))
    assert kind.startswith("Intel(R) Xeon(R) Processor (family 6 model 143: AVX-512 with VNNI, BF16 and AMX)")


def test_avx2_only(tmp_path):
    kind = cpu_kind(_cpuinfo(tmp_path, "AuthenticAMD", 25, 1, "AMD EPYC 7B13", "fpu avx2 fma"))
    assert kind.startswith("AMD EPYC 7B13 (Zen 3: AVX2 only)")


def test_avx512_with_one_extension(tmp_path):
    kind = cpu_kind(_cpuinfo(tmp_path, "GenuineIntel", 6, 85, "Intel Xeon", "avx2 avx512f avx512_vnni"))
    assert "AVX-512 with VNNI)" in kind
