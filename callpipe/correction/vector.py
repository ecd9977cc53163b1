"""FAISS indexes for candidate generation, and word alignment of a transcript with a domain phrase.

Three inner-product indexes over unit vectors (``faiss.IndexFlatIP``, exact search; the
lexicon and phrase lists have hundreds of rows, so HNSW would only add approximation):

- lexicon terms by hashed character n-grams of their phonetic key: the terms that *sound*
  like a misheard word (``"domisiliasion"`` -> ``domiciliación``);
- domain phrases by hashed character n-grams of their spelling: the phrases a stretch of the
  transcript is *written* like (``"recibo de la lu"`` -> ``el recibo de la luz``);
- domain phrases by multilingual-e5-small sentence embeddings (``callpipe.analysis.embeddings``):
  the phrases a stretch *means* like, which still works when the misheard word breaks spelling.

faiss and the embedding model are imported on first use, never at import time.
:func:`align_phrase` then says which phrase word a transcript word stands for, and how many
neighbouring words agree exactly (the context evidence the scorer weighs).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

NGRAM_DIM = 2048
NGRAM_SIZES = (1, 2, 3)


def ngram_vectors(texts: Sequence[str], dim: int = NGRAM_DIM) -> np.ndarray:
    """Unit vectors of hashed character n-grams (sizes 1-3, word boundaries marked), float32."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.split():
            padded = f"<{word}>"
            for size in NGRAM_SIZES:
                weight = float(size)  # longer n-grams say more about the word
                for k in range(len(padded) - size + 1):
                    out[row, zlib.crc32(padded[k : k + size].encode()) % dim] += weight
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class FlatIndex:
    """Exact inner-product search over unit vectors (``faiss.IndexFlatIP``)."""

    def __init__(self, vectors: np.ndarray) -> None:
        import faiss  # deferred: loading faiss costs ~100 ms

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)
        self.size = vectors.shape[0]

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query row, up to ``k`` (row id, cosine) pairs, best first."""
        if len(queries) == 0 or self.size == 0:
            return [[] for _ in range(len(queries))]
        import faiss

        # These indexes hold hundreds of rows: starting OpenMP threads costs ~10x the search
        # itself on a busy CPU, so search on the calling thread and restore the setting.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            queries = np.ascontiguousarray(queries, dtype=np.float32)
            scores, ids = self._index.search(queries, min(k, self.size))
        finally:
            faiss.omp_set_num_threads(threads)
        return [
            [(int(i), float(s)) for i, s in zip(id_row, score_row, strict=True) if i >= 0]
            for id_row, score_row in zip(ids, scores, strict=True)
        ]


Embed = Callable[[Sequence[str]], np.ndarray]


def default_embedders() -> tuple[Embed, Embed]:
    """(query, passage) functions of the process-wide e5 embedder (loaded on first call)."""
    from callpipe.analysis.embeddings import get_embedder

    embedder = get_embedder()
    return embedder.query, embedder.passage


@dataclass(frozen=True, slots=True)
class PhraseAlignment:
    """How a transcript window lines up with one domain phrase.

    ``target`` is the phrase word index aligned to the window's centre token (``None``: the
    centre was skipped); ``span`` is 1, or 2 when the centre and the next token together
    stand for the target word (``"kilo vatio"`` -> ``kilovatio``). ``matched`` lists the other
    phrase words (indexes) matched exactly and ``adjacent`` counts those right next to the
    centre; ``cost`` is the total alignment cost of everything but the centre.
    """

    target: int | None
    span: int
    matched: tuple[int, ...]
    adjacent: int
    cost: float


def align_phrase(
    window: Sequence[str], centre: int, phrase: Sequence[str], similarity: Callable[[str, str], float]
) -> PhraseAlignment | None:
    """Align the whole ``phrase`` (folded words) to a stretch of ``window`` that covers ``centre``.

    Costs: exact match 0, substitution ``1 - similarity``, merge of two window words into one
    phrase word ``1.1 - similarity(joined)``, skipped word 1; the window is free before and
    after the phrase. Returns ``None`` when the best alignment does not cover ``centre``.
    """
    n, m = len(window), len(phrase)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, str] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = 0.0
    for i in range(n + 1):
        for j in range(1, m + 1):
            best, how = inf, None
            if i > 0:
                sub = (
                    0.0 if window[i - 1] == phrase[j - 1] else 1.0 - similarity(window[i - 1], phrase[j - 1])
                )
                if cost[i - 1][j - 1] + sub < best:
                    best, how = cost[i - 1][j - 1] + sub, (i - 1, j - 1, "sub")
                if cost[i - 1][j] + 1.0 < best:
                    best, how = cost[i - 1][j] + 1.0, (i - 1, j, "ins")
            if i > 1:
                merged = window[i - 2] + window[i - 1]
                merge = 1.1 - similarity(merged, phrase[j - 1])
                if cost[i - 2][j - 1] + merge < best:
                    best, how = cost[i - 2][j - 1] + merge, (i - 2, j - 1, "merge")
            if cost[i][j - 1] + 1.0 < best:
                best, how = cost[i][j - 1] + 1.0, (i, j - 1, "del")
            cost[i][j], back[i][j] = best, how
    end = min(range(n + 1), key=lambda i: cost[i][m])
    ops: list[tuple[int, int, str]] = []
    i, j = end, m
    while j > 0:
        step = back[i][j]
        assert step is not None
        ops.append(step)
        i, j = step[0], step[1]
    ops.reverse()
    target: int | None = None
    span = 1
    matched: list[int] = []
    adjacent = 0
    other_cost = 0.0
    covered = False
    for wi, pj, op in ops:
        size = {"sub": 1, "merge": 2, "ins": 1, "del": 0}[op]
        if wi <= centre < wi + size:
            covered = True
            if op in ("sub", "merge") and wi == centre:  # a merge starting before belongs to centre - 1
                target, span = pj, size
            continue
        if op == "sub" and window[wi] == phrase[pj]:
            matched.append(pj)
            adjacent += wi == centre - 1 or wi == centre + span
        elif op == "sub":
            other_cost += 1.0 - similarity(window[wi], phrase[pj])
        elif op == "merge":
            other_cost += 1.1 - similarity(window[wi] + window[wi + 1], phrase[pj])
        else:
            other_cost += 1.0
    if not covered:
        return None
    return PhraseAlignment(target, span, tuple(matched), adjacent, round(other_cost, 4))
