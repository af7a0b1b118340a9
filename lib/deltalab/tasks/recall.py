"""The recall tasks of MAD (spec §2.1–2.3): in-context, noisy in-context and fuzzy in-context recall.

Each builds a token stream ``seq`` and a label stream ``lab`` of the same length, then ``split_views``
turns them into one example (spec §1):

    train:  x = seq[:-1],  y = seq[1:]     plain next-token LM, every position scored
    test:   x = seq[:-1],  y = lab[1:]     only the recall positions scored (-100 elsewhere)

Noisy recall is in-context recall with ``noise_vocab_size > 0`` and ``frac_noise > 0`` (the same function).
"""
from __future__ import annotations

import numpy as np

from .settings import IGNORE_INDEX

__all__ = ["in_context_recall", "fuzzy_in_context_recall", "split_views"]


def split_views(seq: np.ndarray, lab: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one recall instance: ``(seq[:-1], seq[1:])`` for train, ``(seq[:-1], lab[1:])`` for test."""
    return seq[:-1], (seq[1:] if split == "train" else lab[1:])


def _check_noise(noise_vocab_size: int, frac_noise: float) -> None:
    if noise_vocab_size < 0:
        raise ValueError(f"noise_vocab_size must be >= 0, got {noise_vocab_size}")
    if not 0 <= frac_noise < 1:
        raise ValueError(f"frac_noise must be in [0, 1), got {frac_noise}")
    if frac_noise > 0 and noise_vocab_size == 0:
        raise ValueError("frac_noise > 0 needs noise_vocab_size > 0")


# --- in-context recall and noisy in-context recall -------------------------------------------------


def in_context_recall(
    rng: np.random.Generator,
    split: str,
    vocab_size: int,
    seq_len: int,
    multi_query: bool = True,
    noise_vocab_size: int = 0,
    frac_noise: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One (multi-query) associative-recall instance, noisy when ``frac_noise > 0``.

    Vocabulary (V = vocab_size, N = noise_vocab_size, n = V - N, or V - 1 - N without multi-query)::

        keys [0, n//2) | values [n//2, n) | noise [n, n + N) | copy prefix V-1 (only without multi-query)

    Sequence: P = seq_len/2 two-token slots, a fresh key -> value map per sequence::

        slot s < P-1:  k, map[k]        k uniform over keys (with replacement, so keys repeat)
                   or  z1, z2           noise with probability frac_noise (never in slot `keep`)
        last slot:     k*, map[k*]      k* uniform over the distinct keys shown (after the copy prefix V-1
                                        without multi-query)
        lab:           map[k] at the value of every key shown before (multi-query only) and of the probe

    Input length is seq_len - 1 (seq_len without multi-query, where the copy prefix adds a token).
    """
    _check_noise(noise_vocab_size, frac_noise)
    n_plain = vocab_size - noise_vocab_size - (0 if multi_query else 1)
    n_keys = n_plain // 2
    if n_keys < 1:
        raise ValueError(f"vocab_size {vocab_size} leaves {n_plain} ordinary tokens; at least 2 are needed")
    if seq_len < 4 or seq_len % 2:
        raise ValueError(f"seq_len must be even and >= 4 (key-value slots), got {seq_len}")
    n_slots = seq_len // 2 - 1  # the slots before the probe

    keys = rng.integers(0, n_keys, n_slots)
    kv_map = rng.integers(n_keys, n_plain, n_keys)  # the value of every key, fixed for this sequence
    slots = np.stack([keys, kv_map[keys]], axis=1)  # [n_slots, 2]
    is_noise = np.zeros(n_slots, dtype=bool)
    if frac_noise > 0:
        # A per-slot coin, not an exact fraction; slot `keep` is never noise so that some key is shown.
        # (MAD draws keep over all P slots, so with probability frac_noise^(P-1) no key is shown; we do not.)
        keep = rng.integers(n_slots)
        is_noise = rng.random(n_slots) < frac_noise
        is_noise[keep] = False
        noise = rng.integers(n_plain, n_plain + noise_vocab_size, (n_slots, 2))
        slots[is_noise] = noise[is_noise]

    # A value is scored where its key was shown in an earlier (non-noise) slot.
    shown = np.flatnonzero(~is_noise)
    _, first = np.unique(keys[shown], return_index=True)
    repeated = ~is_noise
    repeated[shown[first]] = False
    slot_labels = np.full((n_slots, 2), IGNORE_INDEX)
    if multi_query:
        slot_labels[repeated, 1] = slots[repeated, 1]

    k_probe = rng.choice(np.unique(keys[shown]))
    prefix = [] if multi_query else [vocab_size - 1]
    seq = np.concatenate([slots.ravel(), prefix, [k_probe, kv_map[k_probe]]])
    lab = np.concatenate([slot_labels.ravel(), [IGNORE_INDEX] * len(prefix), [IGNORE_INDEX, kv_map[k_probe]]])
    return split_views(seq.astype(np.int64), lab.astype(np.int64), split)


# --- fuzzy in-context recall ---------------------------------------------------------------------------


def _motifs(rng: np.random.Generator, n: int, first: int, count: int, size: int) -> list[list[int]]:
    """``n`` random ordered ``size``-tuples of distinct tokens from ``[first, first+count)``.

    Each row is a uniform draw over the permutations (MAD lists all permutations and picks one; drawing
    directly has the same distribution without listing count!/(count-size)! tuples).
    """
    order = np.argsort(rng.random((n, count)), axis=1)[:, :size]
    return (first + order).tolist()


def fuzzy_in_context_recall(
    rng: np.random.Generator,
    split: str,
    vocab_size: int,
    seq_len: int,
    k_motif_size: int = 3,
    v_motif_size: int = 3,
    multi_query: bool = True,
    noise_vocab_size: int = 0,
    frac_noise: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One fuzzy-recall instance: keys and values are motifs (tuples of distinct tokens) of varying size.

    Vocabulary (V = vocab_size, N = noise_vocab_size)::

        multi-query:    n = V-1-N ; keys [0, n//2) | values [n//2, n) | noise [n, n+N) | pad V-1
        no multi-query: n = V-2-N ; same, then pad V-2 | copy prefix V-1

    Motif sizes: keys 1..k_motif_size in train but always k_motif_size in test (every key, so test keys
    rarely repeat); values 1..v_motif_size in both splits. Sequence, with L = seq_len::

        probe k*, v*; placed once at the first motif boundary at or after idx ~ U[0, L - 2(|k*|+|v*|))
        while len(seq) < L - |k*| - |v*| - (k_motif_size + v_motif_size):
            k, map[k]          map[k*] = v*, other values drawn at a key's first appearance
            or noise           with probability frac_noise, |k|+|v| noise tokens (unused by MAD's settings)
        then [copy prefix, without multi-query] k*, v* ; left-pad with `pad` to length L+1
        lab: map[k] over the value of a key seen before (multi-query only), and v* over the final probe

    The mid-sequence probe is not placed when idx falls after the last boundary (MAD does the same), so a
    final probe may be unanswerable. Input length is seq_len.
    """
    _check_noise(noise_vocab_size, frac_noise)
    n_plain = vocab_size - noise_vocab_size - (1 if multi_query else 2)
    n_keys, n_values = n_plain // 2, n_plain - n_plain // 2
    pad, copy = (vocab_size - 1, None) if multi_query else (vocab_size - 2, vocab_size - 1)
    if min(k_motif_size, v_motif_size) < 1:
        raise ValueError(f"motif sizes must be >= 1, got k={k_motif_size}, v={v_motif_size}")
    if n_keys < k_motif_size or n_values < v_motif_size:
        raise ValueError(
            f"vocab_size {vocab_size} gives {n_keys} keys and {n_values} values, too few for motifs of "
            f"distinct tokens of size k={k_motif_size}, v={v_motif_size}"
        )
    max_motif = k_motif_size + v_motif_size
    if seq_len <= 2 * max_motif:
        raise ValueError(f"seq_len must be > 2 * (k_motif_size + v_motif_size) = {2 * max_motif}, got {seq_len}")
    test = split == "test"

    def key_sizes(n: int) -> list[int]:
        return [k_motif_size] * n if test else rng.integers(1, k_motif_size + 1, n).tolist()

    k_star = tuple(_motifs(rng, 1, 0, n_keys, key_sizes(1)[0])[0])
    v_star = tuple(_motifs(rng, 1, n_keys, n_values, int(rng.integers(1, v_motif_size + 1)))[0])
    idx = rng.integers(0, seq_len - 2 * (len(k_star) + len(v_star)))
    stop = seq_len - len(k_star) - len(v_star) - max_motif

    # Draw every step's randomness up front; a step adds >= 2 tokens, so stop//2 + 1 steps are enough.
    n_steps = stop // 2 + 1
    k_sizes = key_sizes(n_steps)
    v_sizes = rng.integers(1, v_motif_size + 1, n_steps).tolist()
    key_motifs = _motifs(rng, n_steps, 0, n_keys, k_motif_size)
    value_motifs = _motifs(rng, n_steps, n_keys, n_values, v_motif_size)
    is_noise = [False] * n_steps
    if frac_noise > 0:
        is_noise = (rng.random(n_steps) < frac_noise).tolist()
        noise = rng.integers(n_plain, n_plain + noise_vocab_size, (n_steps, max_motif)).tolist()

    seq: list[int] = []
    lab: list[int] = []
    kv_map: dict[tuple, tuple] = {k_star: v_star}
    seen: set[tuple] = set()
    placed, step = False, 0
    while len(seq) < stop:
        if not placed and len(seq) >= idx:
            seq += k_star + v_star
            lab += [IGNORE_INDEX] * (len(k_star) + len(v_star))
            seen.add(k_star)
            placed = True
            continue
        ks, vs = k_sizes[step], v_sizes[step]
        if is_noise[step]:
            seq += noise[step][: ks + vs]
            lab += [IGNORE_INDEX] * (ks + vs)
        else:
            key = tuple(key_motifs[step][:ks])
            value = kv_map.setdefault(key, tuple(value_motifs[step][:vs]))
            seq += key + value
            lab += [IGNORE_INDEX] * ks + (list(value) if multi_query and key in seen else [IGNORE_INDEX] * len(value))
            seen.add(key)
        step += 1

    if not multi_query:
        seq.append(copy)
        lab.append(IGNORE_INDEX)
    seq += k_star + v_star
    lab += [IGNORE_INDEX] * len(k_star) + list(v_star)
    n_pad = seq_len + 1 - len(seq)
    seq = np.array([pad] * n_pad + seq, dtype=np.int64)
    lab = np.array([IGNORE_INDEX] * n_pad + lab, dtype=np.int64)
    return split_views(seq, lab, split)
