"""Bad and odd inputs for ``saltvol segment``, built from the shared real SEG-Y files.

:func:`build_corpus` writes every case into a folder of its own (inputs, model
files, pre-existing outputs), so a test can hash that folder before and after
the run and prove that nothing was created, changed or deleted. SEG-Y files
are edited at the byte level (:class:`SegyParts`): real text, binary and trace
headers are kept, and only the bytes a case is about are patched.

Bad cases (:data:`BAD_CASES`) must fail with ``saltvol: error: ...`` and exit
code 2; odd-but-valid cases (:data:`ODD_CASES`) must succeed with a finite
probability cube in [0, 1].
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

SEGY_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "segy"
SMALL = SEGY_DIR / "segyio_small.sgy"  # 5 x 5 x 50, IBM float (synthetic segyio test file)
F3 = SEGY_DIR / "segyio_f3.sgy"  # 23 x 18 x 75, int16, real F3 crop
VOLVE = SEGY_DIR / "segysak_volve10-migvel-depth-sub3d.sgy"  # 18 x 52 x 226, IEEE float, real Volve
VOLVE_2D = SEGY_DIR / "segysak_volve10r12-full-z-il10117sub.sgy"  # 2D line, 202 x 1125, IEEE float
WITHDEAD = SEGY_DIR / "segysak_f3-withdead.sgy"  # 239 of 23 x 18 traces, IBM float

_BPS = {1: 4, 2: 4, 3: 2, 5: 4, 6: 8, 8: 1, 9: 8, 10: 4, 11: 2, 12: 8, 16: 1}


# --------------------------------------------------------------------------- #
# byte-level SEG-Y editing
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SegyParts:
    """A post-stack SEG-Y file split into its parts, as bytes (no decoding, nothing lost)."""

    text: bytes  # 3200 bytes
    binary: bytes  # 400 bytes
    headers: np.ndarray  # (n_traces, 240) uint8
    data: np.ndarray  # (n_traces, n_samples * bytes_per_sample) uint8
    fmt: int

    @property
    def bps(self) -> int:
        return _BPS[self.fmt]

    @property
    def n_samples(self) -> int:
        return self.data.shape[1] // self.bps

    def header_words(self, byte: int, size: int = 4) -> np.ndarray:
        """The trace-header word starting at 1-based ``byte`` of every trace, as int64."""
        raw = np.ascontiguousarray(self.headers[:, byte - 1 : byte - 1 + size])
        return raw.view(f">i{size}")[:, 0].astype(np.int64)

    def subset(self, traces: np.ndarray | slice | None = None, n_samples: int | None = None) -> SegyParts:
        """Some traces and/or the first ``n_samples`` samples, with both sample counts patched."""
        headers = (self.headers if traces is None else self.headers[traces]).copy()
        data = (self.data if traces is None else self.data[traces]).copy()
        binary = self.binary
        if n_samples is not None:
            data = data[:, : n_samples * self.bps]
            headers[:, 114:116] = np.frombuffer(struct.pack(">H", n_samples), np.uint8)
            binary = patch(binary, 20, struct.pack(">H", n_samples))
        return replace(self, headers=np.ascontiguousarray(headers), data=np.ascontiguousarray(data), binary=binary)

    def samples_ieee(self) -> np.ndarray:
        assert self.fmt == 5, "only IEEE files are decoded here"
        return self.data.view(">f4").astype(np.float32)

    def with_samples_ieee(self, values: np.ndarray) -> SegyParts:
        assert self.fmt == 5
        raw = np.ascontiguousarray(values, dtype=">f4").view(np.uint8).reshape(self.data.shape)
        return replace(self, data=raw)

    def to_bytes(self) -> bytes:
        traces = np.concatenate([self.headers, self.data], axis=1)
        return self.text + self.binary + traces.tobytes()

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path


def read_parts(path: Path) -> SegyParts:
    """Split a SEG-Y file (no extended text headers, fixed trace length) into its parts."""
    raw = path.read_bytes()
    binary = raw[3200:3600]
    ns = struct.unpack(">H", binary[20:22])[0]
    fmt = struct.unpack(">h", binary[24:26])[0]
    trace_size = 240 + ns * _BPS[fmt]
    traces = np.frombuffer(raw[3600:], np.uint8).reshape(-1, trace_size)
    return SegyParts(raw[:3200], binary, traces[:, :240].copy(), traces[:, 240:].copy(), fmt)


def patch(data: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with ``value`` written at 0-based ``offset``."""
    out = bytearray(data)
    out[offset : offset + len(value)] = value
    return bytes(out)


# --------------------------------------------------------------------------- #
# cases
# --------------------------------------------------------------------------- #


@dataclass
class Case:
    """One run of ``saltvol segment``: its folder, arguments and what to check."""

    name: str
    root: Path  # everything the case owns; hashed before and after the run
    args: list[str]  # after "segment"; "--model" and "--tile" are added unless model is given here
    out: Path
    message: str = ""  # regex the error line must match (bad cases)
    marker: Path | None = None  # a file a hostile pickle would create
    warn: str = ""  # regex a warning line must match (odd cases)
    notes: dict = field(default_factory=dict)


class _Evil:
    """Unpickling this runs ``touch MARKER`` (the classic pickle attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _png_bytes() -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(5).integers(0, 256, (96, 96, 3), dtype=np.uint8)  # noise: PNG cannot shrink it
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _safetensors(path: Path, tensors: dict, metadata: dict[str, str] | None) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    return path


def _model_state(model: Path) -> tuple[dict, str]:
    from safetensors import safe_open

    with safe_open(str(model), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()["saltvol"]


def _model_files(d: Path, model: Path) -> dict[str, tuple[Path, str, Path | None]]:
    """Hostile or broken model files: name -> (path, expected message regex, marker)."""
    import torch

    state, meta_json = _model_state(model)
    meta = json.loads(meta_json)
    small = {k: v for k, v in list(state.items())[:3]}
    out: dict[str, tuple[Path, str, Path | None]] = {}

    def add(name: str, filename: str, message: str, marker: Path | None = None) -> Path:
        path = d / name / filename
        path.parent.mkdir(parents=True)
        out[name] = (path, message, marker)
        return path

    add("model_random_bytes", "model.safetensors", "not a readable safetensors").write_bytes(_random_bytes(5000, 11))
    add("model_text_file", "model.safetensors", "not a readable safetensors").write_text(
        "these are not the weights you are looking for\n" * 20
    )
    add("model_empty", "model.pt", "not a readable safetensors|empty").write_bytes(b"")
    add("model_directory", "weights.safetensors", "folder|directory|does not exist").mkdir()
    add("model_missing", "nope.safetensors", "does not exist")  # never created
    # a safetensors header length of 2**40 bytes: must be refused without allocating it
    add("model_huge_header", "model.safetensors", "not a readable safetensors").write_bytes(
        struct.pack("<Q", 1 << 40) + b"{" + bytes(100)
    )
    # weights of one network, saved config of another
    wrong = dict(meta, config=dict(meta["config"], encoder="resnet34"))
    _safetensors(add("model_other_arch", "model.safetensors", "does not fit"), state, {"saltvol": json.dumps(wrong)})
    wrong = dict(meta, config=dict(meta["config"], arch="unetplusplus"))
    _safetensors(add("model_other_decoder_kind", "model.safetensors", "does not fit"), state, {"saltvol": json.dumps(wrong)})
    wrong = dict(meta, config=dict(meta["config"], arch="fpn"))
    _safetensors(add("model_unknown_arch", "model.safetensors", "arch 'fpn'"), small, {"saltvol": json.dumps(wrong)})
    wrong = dict(meta, config=dict(meta["config"], arch="unetplusplus", full_resolution_width=8))
    _safetensors(add("model_branch_on_nested", "model.safetensors", "needs arch 'unet'"), small, {"saltvol": json.dumps(wrong)})
    wrong = dict(meta, config=dict(meta["config"], arch="manet", decoder_attention="scse"))
    _safetensors(add("model_attention_on_manet", "model.safetensors", "manet has its own"), small, {"saltvol": json.dumps(wrong)})
    wrong = dict(meta, config=dict(meta["config"], decoder_channels=[256, 128, 64, 32, 16]))
    _safetensors(add("model_other_decoder", "model.safetensors", "does not fit"), state, {"saltvol": json.dumps(wrong)})
    _safetensors(add("model_unknown_encoder", "model.safetensors", "encoder"), small,
                 {"saltvol": json.dumps(dict(meta, config=dict(meta["config"], encoder="resnet9000")))})
    _safetensors(add("model_no_metadata", "model.safetensors", "no saltvol metadata"), state, None)
    _safetensors(add("model_garbled_metadata", "model.safetensors", "metadata"), small, {"saltvol": "{'config': oops"})
    _safetensors(add("model_metadata_list", "model.safetensors", "metadata"), small, {"saltvol": "[1, 2, 3]"})
    _safetensors(add("model_metadata_types", "model.safetensors", "metadata"), small,
                 {"saltvol": json.dumps(dict(meta, config={"decoder_channels": 7, "encoder": ["x"]}))})
    _safetensors(add("model_metadata_values", "model.safetensors", "metadata"), state,
                 {"saltvol": json.dumps(dict(meta, image_std=0.0, train_size=-5))})
    _safetensors(add("model_metadata_deep", "model.safetensors", "metadata"), small, {"saltvol": "[" * 200_000})
    # pickles that would run `touch MARKER`
    for name, filename in (("model_pickle_pt", "model.pt"), ("model_pickle_as_safetensors", "model.safetensors")):
        path = add(name, filename, "refused to unpickle|not a safe|not a readable", d / name / "MARKER")
        torch.save({"model": _Evil(out[name][2]), "meta": meta_json}, str(path))
    name = "model_pickle_legacy"
    path = add(name, "model.pt", "refused to unpickle|not a safe|not a readable", d / name / "MARKER")
    path.write_bytes(pickle.dumps({"model": _Evil(out[name][2])}, protocol=2))
    name = "model_pickle_torch_legacy"
    path = add(name, "model.pth", "refused to unpickle|not a safe|not a readable", d / name / "MARKER")
    torch.save({"model": _Evil(out[name][2]), "meta": meta_json}, str(path), _use_new_zipfile_serialization=False)
    # zips and torch files that are not saltvol checkpoints
    path = add("model_plain_zip", "model.pt", "not a safe|not a saltvol checkpoint")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "a zip, not a checkpoint")
    torch.save({"weights": small}, str(add("model_pt_no_meta", "model.pt", "not a saltvol checkpoint")))
    torch.save({"model": small, "meta": "{not json"}, str(add("model_pt_bad_meta", "model.pt", "metadata")))
    torch.save({"model": [1, 2, 3], "meta": meta_json}, str(add("model_pt_bad_state", "model.pt", "state|tensors")))
    torch.save([torch.zeros(3)], str(add("model_pt_list", "model.pt", "not a saltvol checkpoint")))
    nan_state = dict(state)
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    nan_state[key] = state[key].clone()
    nan_state[key].view(-1)[0] = float("nan")
    _safetensors(add("model_nan_weights", "model.safetensors", "NaN"), nan_state, {"saltvol": meta_json})
    return out


#: Bad cases: each must exit 2 with one ``saltvol: error:`` line and leave its folder byte-identical.
BAD_CASES = [
    # SEG-Y files that are not SEG-Y or are damaged
    "missing_input",
    "empty_file",
    "random_bytes",
    "png_renamed",
    "text_header_only",
    "headers_only",
    "cut_mid_trace",
    "cut_mid_header",
    "unknown_format_code",
    "format_code_zero",
    "three_byte_format",
    "little_endian_format",
    "huge_sample_count",
    "zero_sample_count",
    "huge_extended_headers",
    "negative_extended_headers",
    # folders as input
    "directory_input",
    "directory_named_sgy",
    "cube_as_input",
    # grids that do not exist
    "bytes_1_5",
    "bytes_1_5_f3",
    "bytes_constant",
    "bytes_one_constant",
    "bytes_same",
    "bytes_not_a_word",
    "duplicate_trace",
    "misaligned_sample_count",
    # Zarr stores that hold no usable volume
    "zarr_empty",
    "zarr_4d",
    # outputs that must not be touched
    "output_is_zarr_store",
    "output_is_folder",
    "output_is_folder_overwrite",
    "output_is_file",
    "output_is_file_overwrite",
    "output_is_input",
    "output_partial_left",
    "output_parent_is_file",
    "output_parent_missing",
    "output_in_proc",
    "output_bad_input_overwrite",
    "output_is_input_zarr",
    "output_partial_overwrite_bad_input",
    "resume_garbage_partial",
    "zarr_corrupt_chunk",
    # bad options
    "bad_tile",
    "bad_overlap",
    "bad_scale",
]
#: Model-file cases (added to BAD_CASES by build_corpus): every one must be refused.
MODEL_CASES = [
    "model_random_bytes",
    "model_text_file",
    "model_empty",
    "model_directory",
    "model_missing",
    "model_huge_header",
    "model_other_arch",
    "model_other_decoder",
    "model_other_decoder_kind",
    "model_unknown_arch",
    "model_branch_on_nested",
    "model_attention_on_manet",
    "model_unknown_encoder",
    "model_no_metadata",
    "model_garbled_metadata",
    "model_metadata_list",
    "model_metadata_types",
    "model_metadata_values",
    "model_metadata_deep",
    "model_pickle_pt",
    "model_pickle_as_safetensors",
    "model_pickle_legacy",
    "model_pickle_torch_legacy",
    "model_plain_zip",
    "model_pt_no_meta",
    "model_pt_bad_meta",
    "model_pt_bad_state",
    "model_pt_list",
    "model_nan_weights",
]
#: Bad cases that saltvol does not handle yet (the fix belongs in files this suite does not own): name -> why.
XFAIL_CASES: dict[str, str] = {}
#: Odd but valid inputs: each must succeed with a finite probability cube in [0, 1].
ODD_CASES = [
    "nan_inf_samples",
    "all_zero",
    "single_trace",
    "tiny_volume",
    "non_ascii_path",
    "short_2d_line",
    "ibm_read_as_ieee",
    "one_sample_per_trace",
    "one_inline",
    "model_training_checkpoint",
]


def build_corpus(base: Path, model: Path, tile: int = 64) -> dict[str, Case]:
    """Write every case under ``base`` (one folder each) and return them by name."""
    import torch
    cases: dict[str, Case] = {}
    small = read_parts(SMALL)
    f3 = read_parts(F3)
    volve = read_parts(VOLVE)
    small_bytes = SMALL.read_bytes()
    common = ["--model", str(model), "--tile", str(tile)]

    def new(name: str, message: str = "", *, filename: str = "input.sgy", data: bytes | None = None,
            extra: list[str] | None = None, out: str = "out.zarr") -> Case:
        root = base / name
        root.mkdir(parents=True)
        src = root / filename
        if data is not None:
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(data)
        case = Case(name, root, [str(src), "-o", str(root / out), *common, *(extra or [])], root / out, message)
        cases[name] = case
        return case

    # ---- not SEG-Y, or damaged
    new("missing_input", "does not exist")
    new("empty_file", "empty", data=b"")
    new("random_bytes", "not a SEG-Y file|not SEG-Y", data=_random_bytes(40000, 7))
    new("png_renamed", "SEG-Y", data=_png_bytes())
    new("text_header_only", "fewer than the 3600 bytes", data=small_bytes[:3200])
    new("headers_only", "no traces", data=small_bytes[:3600])
    trace = 240 + small.n_samples * small.bps
    new("cut_mid_trace", "truncated", data=small_bytes[: 3600 + 7 * trace + trace // 2])
    new("cut_mid_header", "truncated", data=small_bytes[: 3600 + 3 * trace + 100])
    new("unknown_format_code", "format code 99", data=patch(small_bytes, 3224, struct.pack(">h", 99)))
    new("format_code_zero", "format code 0", data=patch(small_bytes, 3224, struct.pack(">h", 0)))
    new("three_byte_format", "3-byte", data=patch(small_bytes, 3224, struct.pack(">h", 7)))
    new("little_endian_format", "little-endian", data=patch(small_bytes, 3224, struct.pack("<h", 1)))
    huge = small.subset()
    huge = replace(huge, binary=patch(huge.binary, 20, struct.pack(">H", 65535)))
    huge.headers[:, 114:116] = np.frombuffer(struct.pack(">H", 65535), np.uint8)
    new("huge_sample_count", "65535 samples", data=huge.to_bytes())
    new("zero_sample_count", "0 samples", data=patch(small_bytes, 3220, struct.pack(">H", 0)))
    new("huge_extended_headers", "extended textual headers", data=patch(small_bytes, 3504, struct.pack(">h", 32000)))
    new("negative_extended_headers", "extended textual headers", data=patch(small_bytes, 3504, struct.pack(">h", -3)))

    # ---- folders
    case = new("directory_input", "folder|directory", filename="in_dir")
    (case.root / "in_dir").mkdir()
    (case.root / "in_dir" / "notes.txt").write_text("not seismic\n")
    case = new("directory_named_sgy", "folder|directory", filename="survey.sgy")
    (case.root / "survey.sgy").mkdir()
    case = new("cube_as_input", "amplitude", filename="salt.zarr")
    _fake_cube(case.root / "salt.zarr")

    # ---- byte locations that give no grid
    new("bytes_1_5", "1/5", data=small_bytes, extra=["--iline", "1", "--xline", "5"])
    new("bytes_1_5_f3", "1/5", data=f3.to_bytes(), extra=["--iline", "1", "--xline", "5"])
    new("bytes_constant", "same values", data=small_bytes, extra=["--iline", "115", "--xline", "117"])
    new("bytes_one_constant", "115", data=f3.to_bytes(), extra=["--iline", "115", "--xline", "5"])
    new("bytes_same", "both byte 189", data=small_bytes, extra=["--iline", "189", "--xline", "189"])
    new("bytes_not_a_word", "not the first byte", data=small_bytes, extra=["--iline", "190", "--xline", "193"])
    dup = small.subset(np.r_[np.arange(25), 12])
    new("duplicate_trace", "more than one trace", data=dup.to_bytes())
    # 65 samples of 4 bytes make 22 whole traces out of 25 of 50: every trace header is read from the wrong place
    new("misaligned_sample_count", "grid|more than one trace|byte", data=patch(small_bytes, 3220, struct.pack(">H", 65)))

    # ---- Zarr stores without a usable volume (made from the real file)
    from saltvol.io.zarr import open_volume

    real = open_volume(SMALL).load()
    case = new("zarr_empty", "empty", filename="empty.zarr")
    real.isel(iline=slice(0, 0)).to_zarr(case.root / "empty.zarr", zarr_format=3, consolidated=False)
    case = new("zarr_4d", "dims", filename="stack.zarr")
    real[["amplitude"]].expand_dims(offset=2).to_zarr(case.root / "stack.zarr", zarr_format=3, consolidated=False)
    case = new("zarr_corrupt_chunk", "damaged|decompress|cannot read", filename="survey.zarr")
    real.to_zarr(case.root / "survey.zarr", zarr_format=3, consolidated=False)
    chunk = next(p for p in sorted((case.root / "survey.zarr" / "amplitude").rglob("*")) if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(_random_bytes(300, 9))

    # ---- outputs
    good = small_bytes
    case = new("output_is_zarr_store", "exists", data=good)
    _fake_cube(case.out)
    case = new("output_is_folder", "not a Zarr store", data=good)
    case.out.mkdir()
    (case.out / "thesis.txt").write_text("years of work\n")
    case = new("output_is_folder_overwrite", "not a Zarr store", data=good, extra=["--overwrite"])
    case.out.mkdir()
    (case.out / "thesis.txt").write_text("years of work\n")
    case = new("output_is_file", "regular file|existing file", data=good)
    case.out.write_bytes(b"precious bytes")
    case = new("output_is_file_overwrite", "regular file|existing file", data=good, extra=["--overwrite"])
    case.out.write_bytes(b"precious bytes")
    case = new("output_is_input", "regular file|existing file|input", data=good, extra=["--overwrite"])
    case.args[2] = case.args[0]
    case.out = Path(case.args[0])
    case = new("output_partial_left", "interrupted run", data=good)
    _fake_cube(case.root / ".out.zarr.partial")
    case = new("output_parent_is_file", "does not exist|not a folder|not a directory", data=good)
    (case.root / "report.txt").write_text("a file, not a folder\n")
    case.out = case.root / "report.txt" / "out.zarr"
    case.args[2] = str(case.out)
    case = new("output_parent_missing", "does not exist", data=good)
    case.out = case.root / "no" / "such" / "out.zarr"
    case.args[2] = str(case.out)
    case = new("output_in_proc", "", data=good)
    case.out = Path("/proc/saltvol-hardening-test.zarr")
    case.args[2] = str(case.out)
    case = new("output_is_input_zarr", "input", filename="survey.zarr", extra=["--overwrite"])
    real.to_zarr(case.root / "survey.zarr", zarr_format=3, consolidated=False)
    case.out = case.root / "survey.zarr"
    case.args[2] = str(case.out)
    case = new("output_partial_overwrite_bad_input", "not a SEG-Y file|not SEG-Y", data=_random_bytes(40000, 10),
               extra=["--overwrite"])
    _fake_cube(case.root / ".out.zarr.partial")
    case = new("resume_garbage_partial", "resumable", data=good, extra=["--resume"])
    (case.root / ".out.zarr.partial").mkdir()
    (case.root / ".out.zarr.partial" / "zarr.json").write_text("{garbage")
    case = new("output_bad_input_overwrite", "not a SEG-Y file|not SEG-Y", data=_random_bytes(40000, 8),
               extra=["--overwrite"])
    _fake_cube(case.out)

    # ---- options
    new("bad_tile", "tile", data=good, extra=["--tile", "8"])
    new("bad_overlap", "overlap", data=good, extra=["--overlap", "1.5"])
    new("bad_scale", "scale", data=good, extra=["--scale", "1e9"])

    # ---- model files
    models = base / "models"
    for name, (path, message, marker) in _model_files(models, model).items():
        root = path.parent
        shutil.copy(SMALL, root / "input.sgy")
        args = [str(root / "input.sgy"), "-o", str(root / "out.zarr"), "--model", str(path), "--tile", str(tile)]
        cases[name] = Case(name, root, args, root / "out.zarr", message, marker)

    # ---- odd but valid
    def odd(name: str, parts: SegyParts, *, warn: str = "", filename: str = "input.sgy",
            out: str = "out.zarr", extra: list[str] | None = None) -> Case:
        case = new(name, filename=filename, data=parts.to_bytes(), out=out, extra=extra)
        case.warn = warn
        return case

    il, xl = volve.header_words(189), volve.header_words(193)
    keep = np.flatnonzero((il <= il.min() + 4 * 3) & (xl <= xl.min() + 4 * 7))  # 4 inlines x 8 crosslines
    sub = volve.subset(keep, n_samples=96)
    values = sub.samples_ieee().reshape(len(keep), -1)
    values[0, :] = np.nan  # a whole trace
    values[5, 10:20] = np.inf
    values[9, 40:45] = -np.inf
    values[17, ::7] = np.nan
    odd("nan_inf_samples", sub.with_samples_ieee(values), warn="NaN|Inf|non-finite")
    zeros = replace(sub, data=np.zeros_like(sub.data))
    odd("all_zero", zeros)
    odd("single_trace", f3.subset(slice(200, 201)))
    il, xl = f3.header_words(189), f3.header_words(193)
    keep = np.flatnonzero((il < il.min() + 3) & (xl < xl.min() + 3))
    odd("tiny_volume", f3.subset(keep, n_samples=20))
    case = odd("non_ascii_path", small, filename="données/ünïcode sälz.sgy", out="sortie/sälz ø.zarr")
    case.out.parent.mkdir()
    line = read_parts(VOLVE_2D).subset(slice(40, 76), n_samples=128)
    odd("short_2d_line", line)
    dead = read_parts(WITHDEAD)  # IBM floats with dead traces; format patched to IEEE: same size, odd values
    dead = dead.subset(np.flatnonzero(dead.header_words(189) < dead.header_words(189).min() + 8))
    odd("ibm_read_as_ieee", replace(dead, binary=patch(dead.binary, 24, struct.pack(">h", 5))))
    odd("one_sample_per_trace", small.subset(n_samples=1))
    odd("one_inline", f3.subset(slice(0, 18)))
    case = odd("model_training_checkpoint", small)
    path = case.root / "last.pt"
    state, meta_json = _model_state(model)
    torch.save({"model": state, "optimizer": {}, "epoch": 3, "best_score": 0.5, "meta": meta_json}, str(path))
    case.args[case.args.index("--model") + 1] = str(path)
    return cases


def _fake_cube(path: Path) -> Path:
    """A small Zarr v3 store standing in for an earlier output (or a store without amplitude)."""
    import xarray as xr

    ds = xr.Dataset(
        {"salt_probability": (("iline", "xline", "sample"), np.full((3, 4, 5), 0.25, np.float32))},
        coords={"iline": [1, 2, 3], "xline": [10, 11, 12, 13], "sample": np.arange(5.0)},
        attrs={"title": "an earlier result"},
    )
    ds.to_zarr(path, zarr_format=3, consolidated=False)
    return path


# --------------------------------------------------------------------------- #
# running cases
# --------------------------------------------------------------------------- #


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones too) with its kind and, for files, its sha256."""
    import hashlib

    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _child(args: list[str], cwd: str, out: str, err: str) -> None:
    """In a forked child: run ``saltvol ARGS`` exactly as ``python -m saltvol_cli`` would, then exit."""
    code = 1
    try:
        os.chdir(cwd)
        for fd, path in ((1, out), (2, err)):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
        import sys

        sys.argv = ["saltvol", *args]
        from saltvol_cli.main import main

        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - report it the way an uncaught exception would be
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def run_forked(spec: Path, results: Path, timeout: float = 300.0) -> None:
    """Run every case of ``spec`` (JSON: name -> {args, cwd}) in a child forked from a warm parent.

    The parent imports the CLI, the library and torch once and does no work
    (no threads, no event loops), so each child starts where ``python -m
    saltvol_cli`` would be after its imports, and runs the real entry point.
    """
    import signal
    import time

    import saltvol_cli.commands.segment
    import saltvol_cli.main  # noqa: F401
    import segmentation_models_pytorch  # noqa: F401
    import torch  # noqa: F401

    import saltvol.io.zarr
    import saltvol.model
    import saltvol.pipeline  # noqa: F401

    cases = json.loads(spec.read_text())
    logs = results.parent
    done: dict[str, dict] = {}
    for name, case in cases.items():
        out, err = logs / f"{name}.stdout", logs / f"{name}.stderr"
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(case["args"], case["cwd"], str(out), str(err))
        code, timed_out = None, False
        while code is None:
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                code = os.waitstatus_to_exitcode(status)
            elif time.monotonic() - started > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code, timed_out = -9, True
            else:
                time.sleep(0.02)
        done[name] = {
            "code": code,
            "stdout": out.read_text(errors="replace"),
            "stderr": err.read_text(errors="replace"),
            "seconds": time.monotonic() - started,
            "timed_out": timed_out,
        }
    results.write_text(json.dumps(done))


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python hardening_corpus.py SPEC.json RESULTS.json")
    run_forked(Path(sys.argv[1]), Path(sys.argv[2]))
