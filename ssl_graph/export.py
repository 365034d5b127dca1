"""Export cached nodes for other tools: label units and features in fairseq's HuBERT layout,
trained models as transformers directories.

Only fresh results leave the store: exporting a node the plan calls stale would hand another
tool data that no longer matches its spec, so it is refused with the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path

from .specs.base import SpecError
from .specs.nodes import Labels


def _fresh_state(project, name: str):
    node = project[name].node
    states = {st.node.fingerprint: st for st in project.plan().values()}
    st = states[node.fingerprint]
    if st.stale:
        raise SpecError(f"{name} is stale ({'; '.join(st.reasons)}); run "
                        f"`ssl-graph run {project.spec_path} {name}` before exporting it")
    return st, states


def _target_dir(out: Path, force: bool) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpecError(f"{out} exists and is not a directory; pick a directory to export into")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise SpecError(f"{out} is not empty; export into a new directory or pass --force to "
                        "overwrite the files it writes")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _splits(utts: list[str], split: str, valid_percent: float, seed: int) -> dict[str, list[str]]:
    if not valid_percent:
        return {split: utts}
    from .train.split import unit_hash

    valid = [u for u in utts if unit_hash(seed, "valid", u) < valid_percent / 100.0]
    chosen = set(valid)
    return {split: [u for u in utts if u not in chosen], "valid": valid}


def _manifest_splits(name: str, manifests: list[Path], paths: dict[str, Path],
                     utts: list[str]) -> dict[str, list[str]]:
    """The user's own fairseq manifests as splits: ``train.tsv`` → ``train``, its rows (matched
    to utterances by audio file) in its order."""
    from .formats.fairseq import read_manifest

    by_file = {Path(paths[u]).resolve(): u for u in utts}
    out: dict[str, list[str]] = {}
    for m in manifests:
        m = Path(m)
        stem = m.name[:-4] if m.name.endswith(".tsv") else m.stem
        if stem in out:
            raise SpecError(f"{m}: two manifests are named {stem!r}; their .km files would clash")
        rows = []
        for where, _, audio, *_ in read_manifest(m):
            utt = by_file.get(audio.resolve())
            if utt is None:
                raise SpecError(f"{where}: {audio} is not an utterance of {name}; export the "
                                "labels of a corpus that holds every file the manifest lists")
            rows.append(utt)
        out[stem] = rows
    return out


def export_fairseq(project, name: str, out: str | Path, split: str = "train",
                   valid_percent: float = 0.0, seed: int = 0, force: bool = False,
                   manifests: list[Path] | None = None) -> list[Path]:
    """Write ``{split}.tsv`` + ``{split}.km`` + ``dict.km.txt`` (a Labels node) or
    ``{split}.tsv`` + ``{split}_0_1.npy/.len`` (a feature node); returns the files written.

    ``manifests``: the user's fairseq ``train.tsv``/``valid.tsv``: a Labels node then writes one
    ``.km`` per manifest in its row order (and ``dict.km.txt``), and no ``.tsv`` of its own."""
    import numpy as np

    from .formats import fairseq_units as fs

    handle = project[name]
    node = handle.node
    if not node.per_utterance or node.kind == "Corpus":
        raise SpecError(f"{name} is a {node.kind} node; export takes a Labels or a feature node")
    st, states = _fresh_state(project, name)
    corpus_st = states[node.corpus.fingerprint]
    paths = {u: ut.path for u, ut in corpus_st.manifest.utts.items()}
    samples = {u: e[2] for u, e in project.store.index(corpus_st.key).items()}
    utts = sorted(handle.utterances())
    odd = [u for u in utts if not isinstance(paths.get(u), Path)]
    if odd:
        raise SpecError(f"{name}: utterance {odd[0]!r} is not a whole audio file (a segment of a "
                        "recording); fairseq manifests can only list whole files")
    if manifests and (valid_percent or not isinstance(node, Labels)):
        raise SpecError("--manifest takes the splits from your manifests: it writes a Labels "
                        "node's .km files, without --valid-percent")
    parts = _manifest_splits(name, manifests, paths, utts) if manifests else \
        _splits(utts, split, valid_percent, seed)
    out = _target_dir(out, force)
    written = []
    if isinstance(node, Labels):
        counts = np.zeros(node.kmeans.k, dtype=np.int64)
        for name_, group in parts.items():
            if not manifests:
                written.append(fs.write_tsv(out, name_, group, paths, samples))
            labels = handle.labels_many(group)
            for lab in labels:
                counts += np.bincount(lab, minlength=node.kmeans.k)[: node.kmeans.k]
            written.append(fs.write_km(out, name_, labels))
        written.append(fs.write_dict(out, counts))
    else:
        lengths = handle.lengths()
        for name_, group in parts.items():
            written.append(fs.write_tsv(out, name_, group, paths, samples))
            if group:
                first = handle.features(group[0])
                written.extend(fs.write_features(
                    out, name_, [lengths[u] for u in group], first.shape[1:], first.dtype,
                    _in_order(handle, group)))
    return written


def _in_order(handle, utts, step: int = 512):
    """Feature arrays of ``utts`` in row order, read in bounded groups by the bulk reader."""
    for i in range(0, len(utts), step):
        yield from handle.features_many(utts[i:i + step])


def export_segments(project, name: str, out: str | Path, fmt: str | None = None,
                    force: bool = False) -> Path:
    """Write an ``Alignments``/``WordAlignments`` node's checked segments to one file: a CTM
    (``utt 1 begin duration label``) or a TSV (``utt start end label``); ``fmt`` defaults to
    the file's suffix (``.tsv`` → TSV, else CTM)."""
    from .formats.annotation_tsv import write_alignments
    from .formats.ctm import write_ctm

    out = Path(out)
    fmt = fmt or ("tsv" if out.suffix.lower() == ".tsv" else "ctm")
    if fmt not in ("ctm", "tsv"):
        raise SpecError(f"segments export format {fmt!r} is unknown; use ctm or tsv")
    if out.is_dir():
        raise SpecError(f"{out} is a directory; export segments writes one file (e.g. words.ctm)")
    if out.exists() and not force:
        raise SpecError(f"{out} exists; pass --force to overwrite it")
    segments = project[name].segments()  # refuses other kinds and uncomputed nodes
    _fresh_state(project, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    return (write_ctm if fmt == "ctm" else write_alignments)(out, segments)


MODEL_KINDS = ("Pretrain", "FineTune")


def export_model(project, name: str, out: str | Path, fmt: str = "hf",
                 force: bool = False) -> list[Path]:
    """Write a ``Pretrain`` node as an ``AutoModel`` directory, a ``FineTune`` node as an
    ``AutoModelForCTC`` one (with vocab.json, tokenizer and feature-extractor configs)."""
    from .model_io.hf_export import hf_family
    from .specs.pretrained import PretrainedModel

    if fmt != "hf":
        raise SpecError(f"model export format {fmt!r} is unknown; use --format hf")
    node = project[name].node
    if node.kind not in MODEL_KINDS:
        raise SpecError(f"{name} is a {node.kind} node; export model takes a "
                        f"{' or '.join(MODEL_KINDS)} node")
    ctc = node.kind == "FineTune"
    spec = node.architecture if ctc else node.model
    source = node.pretrained if ctc else node.init
    hint = source.model_type if isinstance(source, PretrainedModel) else None
    family = hf_family(spec, name, hint)
    st, _ = _fresh_state(project, name)
    raw = project.store.backend.read_bytes(f"{st.key}/model.safetensors")
    if raw is None:
        raise SpecError(f"{name}: the store holds no weights for it; rerun "
                        f"`ssl-graph run {project.spec_path} {name}`")
    from safetensors.torch import load

    from .model_io.hf_export import export_hf

    out = _target_dir(out, force)
    if not ctc:
        return export_hf(out, spec, family, load(raw))
    from .nn.ctc import backbone_spec

    # the fine-tune's own dropouts / SpecAugment, so training on in transformers continues alike
    mask = node.mask
    extra = {"final_dropout": node.final_dropout,
             "mask_time_prob": mask.prob if mask else 0.0,
             "mask_time_length": mask.length if mask else 10,
             "mask_feature_prob": mask.channel_prob if mask else 0.0,
             "mask_feature_length": mask.channel_length if mask else 10}
    return export_hf(out, backbone_spec(node), family, load(raw), list(st.record["vocab"]),
                     **extra)
