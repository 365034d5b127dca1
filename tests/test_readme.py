"""README.md as a test: every ```bash and ```python snippet runs against a quick-demo store.

The snippets are read from the Markdown itself, so a new one is covered without touching this
file. The store is built once per module: the quick demo (``SSL_GRAPH_DEMO_QUICK=1``) on a
slice of the bundled corpus, in a temp dir holding a copy of ``specs/`` and the slice at
``data/demo`` (where the example specs look for it). Each snippet runs in a directory of its own
(``specs/`` copied, ``data`` linked), so what one snippet writes (``units/``, ``feats/``) cannot
collide with another's.

* A shell line runs in ``bash`` with ``ssl-graph`` meaning ``python -m ssl_graph --store
  <store>`` (this interpreter, this checkout); the lines of a block run in order, one process
  each, and each must exit 0. Comment lines and ``\\`` continuations are handled.
* A Python block runs in a fresh interpreter with the names of ``specs/demo.py`` in scope (the
  README says its fragments continue the demo spec) and ``SSL_GRAPH_STORE`` pointing at the
  store.
* A line that cannot run here is listed below with the reason. Where something cheaper still
  checks it, that runs instead: ``ssl-graph plan`` with the same spec, nodes and ``--set`` for a
  ``ssl-graph run`` that trains at paper scale or needs GPUs (so its names cannot drift),
  ``make -n`` for a ``make`` target. A file a snippet expects the user to bring is made by a
  listed stand-in command. The test fails if an entry matches no README line any more, if a
  line matches two entries, or if a fenced block has a language this test does not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import DEMO, ROOT, make_corpus

README = ROOT / "README.md"

# Lines that cannot run here, keyed by a distinctive substring of the (joined) line, with the
# reason. SKIP: not run at all (in a Python block, the whole block).
SKIP = {
    "--scheduler tcp://": "needs a remote Dask scheduler",
    "SSL_GRAPH_STORAGE_OPTIONS=": "S3 credentials (tests/shared/ runs the quick demo on a local moto S3)",
    "--store s3://": "needs an S3 bucket (tests/shared/ runs the quick demo on a local moto S3)",
}
# `make` lines: `make -n` (prints the recipe, runs nothing) in this checkout, so the target exists.
MAKE_DRY_RUN = {
    "make demo": "the full demo (minutes); tests/test_demo_spec.py runs the quick one",
    "make test": "runs the whole test suite",
}
# `ssl-graph run` lines: `ssl-graph plan` with the same spec, nodes and --set (names checked).
PLAN_INSTEAD = {
    "--set base_it1.max_batch_seconds=200": "paper-size training (HuBERT BASE, 250k updates)",
    "--launcher torchrun --nproc-per-node 4": "DDP over 4 GPUs",
    "device=cuda:1": "needs a second GPU",
    "nohup ": "trains the tiny HuBERT twins in the background (1500 updates each: minutes)",
}
# Lines written with placeholder syntax, and the commands they stand for.
EXPAND = {
    "ssl-graph verify [specs/demo.py] [--repair]": [
        "ssl-graph verify", "ssl-graph verify specs/demo.py", "ssl-graph verify --repair",
    ],
}
# Files a snippet reads that a user brings, keyed by their path in the snippet: made in the
# snippet's directory before it runs, by the command given (the reason says what stands in).
PROVIDE = {
    "checkpoints/hubert-base": ("ssl-graph export model specs/demo.py:it2 checkpoints/hubert-base",
                                "a released HuBERT: the quick demo's it2 exported to transformers"),
}
LANGUAGES = {"bash", "python"}  # fenced blocks with another language name fail the test
UNRUN = {""}  # unlabeled blocks are pictures (pipeline, store layout), not commands


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    lines: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)

    @property
    def id(self) -> str:
        return f"{self.lang}@README.md:{self.line}"


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced code block (``` or ~~~, any indentation) with its info string's language."""
    blocks, open_fence, block = [], None, None
    for n, raw in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})\s*([^\s`]*)", raw)
        if open_fence is None:
            if m:
                open_fence, block = m.group(1), Block(m.group(2).lower(), n)
        elif m and m.group(1)[0] == open_fence[0] and len(m.group(1)) >= len(open_fence) \
                and not m.group(2):
            blocks.append(block)
            open_fence = None
        else:
            block.lines.append((n, raw))
    assert open_fence is None, f"README.md:{block.line}: fenced block never closed"
    return blocks


def shell_commands(block: Block) -> list[tuple[int, str]]:
    """Logical lines of a shell block: continuations joined, comment-only and blank lines dropped."""
    out, pending, start = [], "", 0
    for n, raw in block.lines:
        if not pending:
            start = n
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append((start, line))
    assert not pending, f"README.md:{start}: a continuation line ends the block"
    return out


BLOCKS = fenced_blocks(README.read_text(encoding="utf-8"))
SHELL = [b for b in BLOCKS if b.lang == "bash"]
PYTHON = [b for b in BLOCKS if b.lang == "python"]


def _entry(line: str) -> tuple[str, str] | None:
    hits = [(table, key) for table in ("SKIP", "MAKE_DRY_RUN", "PLAN_INSTEAD", "EXPAND")
            for key in globals()[table] if key in line]
    assert len(hits) <= 1, f"{line!r} matches several entries: {hits}"
    return hits[0] if hits else None


def test_every_fenced_block_is_run_or_a_picture():
    langs = {b.lang for b in BLOCKS}
    assert langs <= LANGUAGES | UNRUN, (
        f"README.md has fenced blocks in {sorted(langs - LANGUAGES - UNRUN)}: "
        "label shell as ```bash and Python as ```python so this test runs them"
    )
    assert SHELL and PYTHON
    for b in BLOCKS:
        if b.lang in UNRUN:  # a picture must not hide a command this test would miss
            assert not any(t.lstrip().startswith(("ssl-graph ", "$ ", ">>> ")) for _, t in b.lines), \
                f"README.md:{b.line}: an unlabeled block holds commands; label it ```bash"


def test_snippets_are_read_from_the_markdown():
    text = textwrap.dedent("""\
        prose `ssl-graph ls` is not a snippet
        ```bash
        # a comment line
        ssl-graph run specs/demo.py \\
            --keep-going   # trailing comment
        ssl-graph ls
        ```
        - a list item:
          ~~~~python
          x = 1
          ```
          ~~~~
        ```
        picture
        ```
        """)
    sh, py, pic = fenced_blocks(text)
    assert (sh.lang, py.lang, pic.lang) == ("bash", "python", "")
    assert shell_commands(sh) == [
        (4, "ssl-graph run specs/demo.py      --keep-going   # trailing comment"), (6, "ssl-graph ls")]
    assert [t for _, t in py.lines] == ["  x = 1", "  ```"] and pic.line == 13


def test_every_table_entry_still_matches_a_readme_line():
    shell = [line for b in SHELL for _, line in shell_commands(b)]
    snippets = [t for b in SHELL + PYTHON for _, t in b.lines]
    for table, lines in ((SKIP, shell + snippets), (MAKE_DRY_RUN, shell), (PLAN_INSTEAD, shell),
                         (EXPAND, shell), (PROVIDE, snippets)):
        for key in table:
            assert any(key in line for line in lines), (
                f"{key!r} matches no README line any more: remove it from the table")
    for line in shell:
        _entry(line)  # no line matches two entries


# ---------------------------------------------------------------- the store


def _utterances_named_in_readme() -> set[str]:
    stems = {f.stem for f in (DEMO / "wav").glob("*.flac")}
    words = set(re.findall(r"[\w-]+", "\n".join(t for b in SHELL + PYTHON for _, t in b.lines)))
    return words & stems


def _add_utterance(dst: Path, utt: str) -> None:
    shutil.copy2(DEMO / "wav" / f"{utt}.flac", dst / "wav" / f"{utt}.flac")
    for tsv in ("transcripts.tsv", "alignments.tsv", "speakers.tsv"):
        rows = [ln for ln in (DEMO / tsv).read_text().splitlines()[1:]
                if ln.split("\t", 1)[0] == utt]
        with open(dst / tsv, "a") as fh:
            fh.write("\n".join(rows) + "\n")


@dataclass
class Demo:
    root: Path  # holds specs/, data/demo, store
    store: Path
    env: dict

    def workdir(self, name: str) -> Path:
        d = self.root / name
        shutil.copytree(self.root / "specs", d / "specs")
        (d / "data").symlink_to(self.root / "data", target_is_directory=True)
        return d


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "specs", root / "specs", ignore=shutil.ignore_patterns("__pycache__"))
    data = root / "data" / "demo"
    have = set(make_corpus(data, 12))
    for utt in sorted(_utterances_named_in_readme() - have):  # usf3-0009 and friends
        _add_utterance(data, utt)
    store = root / "store"
    env = dict(os.environ, SSL_GRAPH_DEMO_QUICK="1", SSL_GRAPH_DEMO_DATA=str(data),
               SSL_GRAPH_STORE=str(store), PYTHONPATH=os.pathsep.join(
                   [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("SSL_GRAPH_SET", None)
    r = subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(store), "run", "-q",
                        "specs/demo.py"], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return Demo(root, store, env)


# ---------------------------------------------------------------- shell


def _plan_args(line: str) -> str:
    """The `ssl-graph plan` that checks a `run` line: same spec, nodes, --set (and SSL_GRAPH_SET)."""
    words = shlex.split(line, comments=True)
    env = [w for w in words[:words.index("ssl-graph")] if "=" in w and w != "nohup"]
    rest = words[words.index("ssl-graph") + 1:]
    assert rest[0] == "run", f"{line!r}: only `ssl-graph run` lines can be planned instead"
    keep, i = [], 1
    while i < len(rest):
        w = rest[i]
        if w in (">", "&", "|") or w.startswith(">"):
            break
        if w == "--set":
            keep += [w, rest[i + 1]]
            i += 2
        elif w.startswith("-"):  # a run-only option; those taking a value take the next word
            i += 1 if w in ("--keep-going", "--no-progress", "--single-writer", "-q", "--quiet") \
                or "=" in w else 2
        else:
            keep.append(w)
            i += 1
    env = [f"{k}={shlex.quote(v)}" for k, v in (w.split("=", 1) for w in env)]
    return " ".join(env + [shlex.quote(w) for w in ["ssl-graph", "plan"] + keep])


def _commands(line: str) -> list[str]:
    hit = _entry(line)
    if hit is None:
        return [line]
    table, key = hit
    if table == "SKIP":
        return []
    if table == "MAKE_DRY_RUN":
        assert line.startswith("make "), line
        return [f"make -n -C {shlex.quote(str(ROOT))} {line.removeprefix('make ')}"]
    if table == "PLAN_INSTEAD":
        return [_plan_args(line)]
    return EXPAND[key]


BASH_PRELUDE = 'ssl-graph() { "$SSL_GRAPH_README_PYTHON" -m ssl_graph --store "$SSL_GRAPH_STORE" "$@"; }\n'


def _bash(cmd: str, where: str, cwd: Path, demo: Demo) -> None:
    r = subprocess.run(["bash", "-c", BASH_PRELUDE + cmd], cwd=cwd, capture_output=True, text=True,
                       env=dict(demo.env, SSL_GRAPH_README_PYTHON=sys.executable), timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, (
        f"{where}: `{cmd}` exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def _provide(block: Block, cwd: Path, demo: Demo) -> None:
    text = "\n".join(t for _, t in block.lines)
    for path, (cmd, _why) in PROVIDE.items():
        if path in text:
            _bash(cmd, f"making {path} for README.md:{block.line}", cwd, demo)


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_snippet_runs(block: Block, demo: Demo):
    cwd = demo.workdir(f"sh-{block.line}")
    _provide(block, cwd, demo)
    ran = 0
    for n, line in shell_commands(block):
        for cmd in _commands(line):
            _bash(cmd, f"README.md:{n}", cwd, demo)
            ran += 1
    if not ran:
        pytest.skip("no line can run here: " + "; ".join(
            SKIP[_entry(line)[1]] for _, line in shell_commands(block)))


# ---------------------------------------------------------------- python

RUNNER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from ssl_graph.specs.loader import import_spec_module
    code, name = json.loads(sys.stdin.read())
    ns = {k: v for k, v in vars(import_spec_module(Path("specs/demo.py").resolve())).items()
          if not k.startswith("__")}
    ns["__name__"] = "__readme__"
    exec(compile(code, name, "exec"), ns)
""")


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_snippet_runs(block: Block, demo: Demo):
    text = "\n".join(t for _, t in block.lines)
    if reasons := [why for key, why in SKIP.items() if key in text]:
        pytest.skip("; ".join(reasons))
    cwd = demo.workdir(f"py-{block.line}")
    _provide(block, cwd, demo)
    # line numbers of a traceback are README's: pad the code down to where the block starts
    code = "\n" * (block.lines[0][0] - 1) + "\n".join(t for _, t in block.lines)
    r = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps([code, str(README)]),
                       cwd=cwd, env=demo.env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"README.md:{block.line}: the block failed\n{r.stdout[-3000:]}\n{r.stderr[-4000:]}"
