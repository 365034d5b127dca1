"""``ASRScore``: CTC decoding (greedy or beam search + LM) of a fine-tune's test utterances and
their error rates."""

from __future__ import annotations

import time

from ..store.backend import read_json, write_json
from .session import resolve_device
from .utterances import UtteranceBatcher
from .vocab import WORD_SEP, Vocab, stored_references, tokens_to_text


def units_for(metric: str, tokens: list[str]) -> list[str]:
    """The sequence a metric compares: characters (spaces included), words, or phones."""
    if metric == "cer":
        return list(tokens_to_text(tokens))
    if metric == "wer":
        return tokens_to_text(tokens).split()
    return [t for t in tokens if t != WORD_SEP]


def score(st, ctx) -> dict:
    import torch
    from safetensors.torch import load

    from ..kernels.edit_distance import edit_distance
    from ..nn.ctc import build_ctc_model

    node, ft = st.node, st.node.model
    ft_state = ctx.state(ft)
    backend = ctx.store.backend
    split = read_json(backend, f"{ft_state.key}/split.json")
    raw = backend.read_bytes(f"{ft_state.key}/model.safetensors")
    if split is None or raw is None:
        raise FileNotFoundError(f"{st.name}: fine-tune {ft_state.name} has no weights/split; rerun it")
    vocab = Vocab(tuple(ft_state.record["vocab"]))
    _, refs = stored_references(ft, ctx)
    test = [u for u in split["test"] if u in refs]
    if not test:
        raise ValueError(
            f"{st.name}: fine-tune {ft_state.name} held apart no annotated test utterance; raise "
            "split.test_fraction (or add utterances)"
        )
    corpus_state = ctx.state(ft.corpus)
    index = ctx.store.index(corpus_state.key)
    lengths = {u: index[u][2] for u in test}
    paths = {u: corpus_state.manifest.utts[u].path for u in test}
    device = resolve_device(node.device)
    model = build_ctc_model(ft, len(vocab))
    model.load_state_dict(load(raw))
    model.to(device).eval()
    batcher = UtteranceBatcher(paths, lengths, sample_rate=ft.corpus.sample_rate,
                               batch_seconds=node.batch_seconds, seed=0, cache=False)
    decode, lm_info = _decoder(node, ft, split, refs, st, backend)
    hyps: dict[str, list[str]] = {}
    task = ctx.task(f"{st.name}: decode", total=len(test))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in batcher.in_order():
            wave = torch.from_numpy(batch.wave).to(device)
            pad = None if batch.padding_mask is None else torch.from_numpy(batch.padding_mask).to(device)
            logits, frames = model(wave, pad)
            for u, ids in zip(batch.utts, decode(logits, frames, vocab)):
                hyps[u] = vocab.decode(ids)
            ctx.advance(task, len(batch.utts))
    totals = {m: [0, 0] for m in node.metric_names}
    per_utt = {}
    for u in sorted(test):
        entry = {"ref": _text(ft.units, refs[u]), "hyp": _text(ft.units, hyps[u])}
        for m in node.metric_names:
            r, h = units_for(m, refs[u]), units_for(m, hyps[u])
            e = edit_distance(r, h)
            totals[m][0] += e
            totals[m][1] += len(r)
            entry[m] = [e, len(r)]  # edits, reference length
        per_utt[u] = entry
    write_json(backend, f"{st.key}/hypotheses.json", per_utt)
    metrics = {m: (e / n if n else float("nan")) for m, (e, n) in totals.items()}
    return {"metrics": metrics, "n_test_utts": len(test), "units": ft.units,
            "decoder": node.decoder_name, **lm_info,
            "decode_seconds": round(time.perf_counter() - t0, 3), "device": device,
            "hypotheses": "hypotheses.json"}


def _decoder(node, ft, split: dict, refs: dict, st, backend):
    """(logits, frames, vocab) → id lists, and what to record about the LM."""
    from ..nn.ctc import greedy_decode

    spec = node.decoder
    if spec is None:
        return (lambda logits, frames, vocab: greedy_decode(logits, frames)), {}
    import torch

    from .decode import beam_search, train_lm

    lm, info = None, {}
    if spec.lm is not None:  # the labeled (training) transcripts only: no test words leak in
        sentences = [tokens_to_text(refs[u]).split() for u in split["labeled"] if u in refs]
        text, lm = train_lm(sentences, spec.lm.order)
        backend.write_bytes(f"{st.key}/lm.arpa", text.encode())
        info = {"lm": {"file": "lm.arpa", "order": spec.lm.order, "sentences": len(sentences),
                       "ngrams": len(lm.probs)}}

    def decode(logits, frames, vocab):
        lp = torch.log_softmax(logits.float(), -1).cpu().numpy()
        return [beam_search(lp[i, :int(n)], vocab.symbols, spec.beam, lm, spec.alpha, spec.beta,
                            spec.token_min_logp) for i, n in enumerate(frames.tolist())]

    return decode, info


def _text(units: str, tokens: list[str]) -> str:
    return tokens_to_text(tokens) if units == "char" else " ".join(tokens)
