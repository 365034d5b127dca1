"""Units/features out in fairseq's HuBERT layout (read back with fairseq's loader semantics),
and the bulk read path (many utterances, iteration, to_numpy, a DataLoader, query --all)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from ssl_graph import SpecError
from ssl_graph.cli import main
from ssl_graph.datasets import UtteranceDataset, pad_collate
from ssl_graph.export import export_fairseq


# ---- fairseq's loader semantics (hubert_dataset.py), restated line by line ---------------------
def fairseq_load_audio(manifest, max_keep=None, min_keep=None):
    names, inds, sizes = [], [], []
    with open(manifest) as f:
        root = f.readline().strip()
        ind = -1
        for ind, line in enumerate(f):
            items = line.strip().split("\t")
            assert len(items) == 2, line
            sz = int(items[1])
            if (min_keep is not None and sz < min_keep) or (max_keep is not None and sz > max_keep):
                continue
            names.append(items[0])
            inds.append(ind)
            sizes.append(sz)
    return root, names, inds, ind + 1, sizes


def fairseq_load_label(path, inds, tot):
    with open(path) as f:
        labels = [line.rstrip() for line in f]
    assert len(labels) == tot, f"number of labels does not match ({len(labels)} != {tot})"
    return [labels[i] for i in inds]


def fairseq_invalid_lengths(sizes, audio_rate, label_path, label_rate, inds, tot, tol=0.1):
    with open(label_path) as f:
        lengths = [len(line.rstrip().split()) for line in f]
    assert len(lengths) == tot
    lengths = [lengths[i] for i in inds]
    return sum(abs(s / audio_rate - n / label_rate) > tol for s, n in zip(sizes, lengths))


def fairseq_dictionary(path):
    out = {}
    with open(path) as f:
        for line in f:
            word, count = line.rstrip().rsplit(" ", 1)
            out[word] = int(count)
    return out


@pytest.fixture
def done(project):
    project.run()
    return project


def test_exported_units_load_with_fairseq_semantics(done, tmp_path):
    files = export_fairseq(done, "labels", tmp_path / "units")
    assert sorted(f.name for f in files) == ["dict.km.txt", "train.km", "train.tsv"]
    root, names, inds, tot, sizes = fairseq_load_audio(tmp_path / "units" / "train.tsv")
    utts = sorted(done["labels"].utterances())
    assert tot == len(utts) == 12 and len(names) == 12
    labels = fairseq_load_label(tmp_path / "units" / "train.km", inds, tot)
    assert fairseq_invalid_lengths(sizes, 16000, tmp_path / "units" / "train.km", 100, inds, tot) == 0
    import soundfile as sf

    for utt, name, size, line in zip(utts, names, sizes, labels):
        assert name == f"{utt}.flac" and sf.info(f"{root}/{name}").frames == size
        np.testing.assert_array_equal(np.array(line.split(), dtype=np.int64),
                                      done["labels"].labels(utt))
    d = fairseq_dictionary(tmp_path / "units" / "dict.km.txt")
    assert list(d) == [str(i) for i in range(20)]
    assert sum(d.values()) == sum(len(line.split()) for line in labels)


def test_labels_follow_the_users_own_fairseq_manifests(done, workdir, tmp_path):
    """The user's train.tsv/valid.tsv (their order, their split, a root of their own) get .km
    files fairseq's loader pairs row by row; the CLI takes --manifest before the output too."""
    utts = sorted(done["labels"].utterances())
    wav = workdir / "wav"
    order = {"train": utts[7:] + utts[:3], "valid": list(reversed(utts[3:7]))}
    samples = done["corpus"].lengths()
    for split, group in order.items():
        rows = [f"{u}.flac\t{samples[u]}" for u in group]
        (tmp_path / f"{split}.tsv").write_text(f"{wav}\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(main, [
        "--store", str(workdir / "store"), "export", "labels", f"{workdir / 'pipe.py'}:labels",
        str(tmp_path / "units"), "--manifest", str(tmp_path / "train.tsv"),
        "--manifest", str(tmp_path / "valid.tsv")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == \
        ["dict.km.txt", "train.km", "valid.km"]
    for split, group in order.items():
        _, names, inds, tot, sizes = fairseq_load_audio(tmp_path / f"{split}.tsv")
        lines = fairseq_load_label(tmp_path / "units" / f"{split}.km", inds, tot)
        assert [n.removesuffix(".flac") for n in names] == group
        for name, line in zip(names, lines):
            np.testing.assert_array_equal(np.array(line.split(), dtype=np.int64),
                                          done["labels"].labels(name.removesuffix(".flac")))
    (tmp_path / "odd.tsv").write_text(f"{wav}\n{utts[0]}.flac\t5\nnot-there.flac\t5\n")
    with pytest.raises(SpecError, match=r"odd.tsv:3: .*not-there.flac is not an utterance of "
                                        "labels"):
        export_fairseq(done, "labels", tmp_path / "odd", manifests=[tmp_path / "odd.tsv"])
    with pytest.raises(SpecError, match="without --valid-percent"):
        export_fairseq(done, "labels", tmp_path / "odd", manifests=[tmp_path / "odd.tsv"],
                       valid_percent=5)


def test_exported_features_and_valid_split(done, tmp_path):
    export_fairseq(done, "mfcc", tmp_path / "f", valid_percent=30, seed=1)
    seen = []
    for split in ("train", "valid"):
        _, names, inds, tot, sizes = fairseq_load_audio(tmp_path / "f" / f"{split}.tsv")
        feats = np.load(tmp_path / "f" / f"{split}_0_1.npy")
        lens = [int(x) for x in (tmp_path / "f" / f"{split}_0_1.len").read_text().split()]
        assert len(lens) == tot and sum(lens) == len(feats) and feats.shape[1] == 39
        offsets = np.concatenate([[0], np.cumsum(lens)])
        for i, name in enumerate(names):
            utt = name.removesuffix(".flac")
            np.testing.assert_array_equal(feats[offsets[i]:offsets[i + 1]],
                                          done["mfcc"].features(utt))
            seen.append(utt)
        assert tot > 0
    assert sorted(seen) == sorted(done["mfcc"].utterances())


def test_export_refuses_stale_nodes_and_non_empty_dirs(project, workdir, tmp_path):
    with pytest.raises(SpecError, match="labels is stale .*run `ssl-graph run"):
        export_fairseq(project, "labels", tmp_path / "x")
    project.run()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(SpecError, match="is not empty"):
        export_fairseq(project, "labels", tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_export_cli(done, workdir, tmp_path):
    runner = CliRunner()
    args = ["--store", str(workdir / "store"), "export"]
    res = runner.invoke(main, args + ["labels", f"{workdir}/pipe.py:labels", str(tmp_path / "u")])
    assert res.exit_code == 0 and "wrote 3 files" in res.output, res.output
    res = runner.invoke(main, args + ["labels", f"{workdir}/pipe.py:mfcc", str(tmp_path / "v")])
    assert res.exit_code != 0 and "use `ssl-graph export features`" in res.output


# ---- bulk reads ----------------------------------------------------------------------------
def test_bulk_reads_equal_single_reads(done):
    h = done["mfcc"]
    utts = h.utterances()[::-1]
    many = h.features_many(utts)
    for u, a in zip(utts, many):
        np.testing.assert_array_equal(a, h.features(u))
    assert {u for u, _ in h} == set(utts)
    values, offsets, ids = h.to_numpy()
    assert len(offsets) == len(ids) + 1 and offsets[-1] == len(values)
    for i, u in enumerate(ids):
        np.testing.assert_array_equal(values[offsets[i]:offsets[i + 1]], h.features(u))
    with pytest.raises(KeyError, match="no utterance 'nope'"):
        h.features_many(["nope"])


def test_small_blocks_still_give_whole_utterances(done):
    from ssl_graph.store.bulk import iter_ragged

    reader = done["labels"]._reader
    got = dict(iter_ragged(reader, block_bytes=64))  # one utterance per block
    for u, a in got.items():
        np.testing.assert_array_equal(a, done["labels"].labels(u))


def test_dataset_feeds_a_torch_dataloader(done):
    import torch

    ds = UtteranceDataset(done["mfcc"], done["labels"])
    assert len(ds) == 12
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=pad_collate)
    batch = next(iter(loader))
    assert batch["features"].shape[0] == 4 and batch["features"].shape[2] == 39
    n = int(batch["lengths"][0])
    np.testing.assert_array_equal(batch["features"][0, :n].numpy(), done["mfcc"].features(batch["utts"][0]))
    assert (batch["labels"][0, n:] == -100).all()
    first = next(ds.batches(3))
    np.testing.assert_array_equal(first[1]["labels"], ds[1]["labels"])


def test_query_all_writes_one_npy_per_utterance(done, workdir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "dump"
    base = ["--store", str(workdir / "store"), "query"]
    res = runner.invoke(main, base + ["labels", f"{workdir}/pipe.py:labels", "--all", "--out", str(out)])
    assert res.exit_code == 0 and "saved 12 utterances" in res.output, res.output
    for u in done["labels"].utterances():
        np.testing.assert_array_equal(np.load(out / f"{u}.npy"), done["labels"].labels(u))
    res = runner.invoke(main, base + ["labels", f"{workdir}/pipe.py:labels", "--all", "--out", str(out)])
    assert res.exit_code != 0 and "exists" in res.output


def test_bulk_reads_check_chunks_like_single_reads(done, workdir):
    from ssl_graph.store.integrity import DamagedData

    h = done["mfcc"]
    chunk = next((workdir / "store" / h.key / "parts").glob("*/c/0/0"))
    chunk.unlink()
    with pytest.raises(DamagedData, match=r"node 'mfcc' .* utterance .*verify --repair"):
        h.to_numpy()
