"""Tests of the MAD task generators (deltalab.tasks) against the spec, docs/mad.md §1–2.

Generic tests are parametrised over the registry ``TASKS``; a new task is picked up by them at once (and
needs an entry in INPUT_LENGTH below). Task-specific tests check each token layout and scoring rule.
"""
from __future__ import annotations

import numpy as np
import pytest

from deltalab import tasks as T
from deltalab.tasks import IGNORE_INDEX as IGN

N = 32  # examples per generated batch in these tests
RECALL = ["in-context-recall", "noisy-in-context-recall", "fuzzy-in-context-recall"]
INPUT_LENGTH = {  # input length per task as a function of seq_len (spec §1)
    "in-context-recall": lambda L: L - 1,
    "noisy-in-context-recall": lambda L: L - 1,
    "fuzzy-in-context-recall": lambda L: L,
    "selective-copying": lambda L: L,
    "compression": lambda L: L,
    "memorization": lambda L: L,
}
SETTING_COUNTS = {
    "in-context-recall": 11,
    "fuzzy-in-context-recall": 11,
    "noisy-in-context-recall": 14,
    "selective-copying": 13,
    "compression": 11,
    "memorization": 6,
}


def gen(task, split="test", n=N, seed=0, **setting):
    return T.generate(task, split, n, seed, **setting)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [start, stop) of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def contains(seq: list[int], pattern: list[int]) -> bool:
    return any(seq[i : i + len(pattern)] == pattern for i in range(len(seq) - len(pattern) + 1))


# --- registry and settings -------------------------------------------------------------------------------


def test_one_record_per_task():
    """Each task is one ``Task`` record, keyed by its name; every task has a settings file and a distinct column."""
    assert sorted(T.TASKS) == sorted(SETTING_COUNTS) == T.task_names()
    assert all(name == task.name for name, task in T.TASKS.items())
    assert T.COLUMNS == ["Compress", "Context Recall", "Fuzzy Recall", "Memorize", "Noisy Recall", "Selective Copy"]
    assert sorted(t.column for t in T.TASKS.values()) == T.COLUMNS
    assert {t.name for t in T.TASKS.values() if t.backbone == "autoencoder"} == {"compression"}
    assert {t.backbone for t in T.TASKS.values()} == {"autoencoder", "lm"}
    assert {t.shorthand for t in T.TASKS.values()} == {"CR", "NR", "FR", "M", "C", "SC"}
    assert {t.column for t in T.TASKS.values() if t.agreement == "classified"} == {"Context Recall", "Noisy Recall"}
    assert all(T.task_of_column(t.column) is t for t in T.TASKS.values())
    with pytest.raises(ValueError, match="unknown task column 'Recall'; valid: Compress, Context Recall"):
        T.task_of_column("Recall")


def test_a_task_record_refuses_an_unknown_backbone_or_agreement_kind():
    with pytest.raises(ValueError, match=r"task 'x': backbone must be one of \('lm', 'autoencoder'\); got 'rnn'"):
        T.Task("x", T.TASKS["compression"].generator, "X", "X", "ranked", backbone="rnn")
    with pytest.raises(ValueError, match=r"agreement must be one of \('ranked', 'classified'\); got 'sorted'"):
        T.Task("x", T.TASKS["compression"].generator, "X", "X", "sorted")


def test_setting_counts_total_66():
    counts = {t: len(T.settings(t)) for t in T.TASKS}
    assert counts == SETTING_COUNTS
    assert sum(counts.values()) == 66


@pytest.mark.parametrize("task", sorted(T.TASKS))
def test_settings_are_one_at_a_time_changes(task):
    base, rows = T.baseline(task), T.settings(task)
    assert rows[0] == base and base["num_test_examples"] == 1280
    for row in rows[1:]:
        assert set(row) == set(base)  # complete
        assert len([k for k in base if row[k] != base[k]]) == 1
    ids = [T.setting_id(task, s) for s in rows]
    assert len(set(ids)) == len(ids) and ids[0] == "baseline"
    assert all(i.replace("_", "").replace("p", "").isalnum() for i in ids)  # filesystem-safe
    assert ids == [T.setting_id(task, s) for s in T.settings(task)]  # stable


def test_mad_baselines_and_changes():
    ntr = [800, 1600, 3200, 6400, 12800]
    for task in T.TASKS:
        vals = {k: sorted({s[k] for s in T.settings(task)}) for k in T.baseline(task)}
        if task != "memorization":
            assert vals["num_train_examples"] == ntr
    assert T.baseline("memorization") == {"vocab_size": 256, "seq_len": 32, "num_train_examples": 256,
                                          "num_test_examples": 1280}
    nr = {k: sorted({s[k] for s in T.settings("noisy-in-context-recall")}) for k in ("vocab_size", "frac_noise")}
    assert nr == {"vocab_size": [32, 48, 80, 144], "frac_noise": [0.2, 0.4, 0.6, 0.8]}
    sc = sorted({s["num_tokens_to_copy"] for s in T.settings("selective-copying")})
    assert sc == [16, 32, 64, 96]
    fr = T.baseline("fuzzy-in-context-recall")
    assert (fr["k_motif_size"], fr["v_motif_size"], fr["multi_query"]) == (3, 3, True)


def test_setting_id_lists_only_differing_keys():
    assert T.setting_id("in-context-recall", {"vocab_size": 32}) == "vs32"
    assert T.setting_id("in-context-recall", {**T.baseline("in-context-recall"), "seq_len": 512}) == "sl512"
    assert T.setting_id("noisy-in-context-recall", {"frac_noise": 0.4}) == "fn0p4"
    assert T.setting_id("memorization", {"vocab_size": 256}) == "baseline"


# --- generic properties, every task ----------------------------------------------------------------------


@pytest.mark.parametrize("split", T.SPLITS)
@pytest.mark.parametrize("task", sorted(T.TASKS))
def test_shapes_dtypes_and_ranges(task, split):
    V, L = T.baseline(task)["vocab_size"], T.baseline(task)["seq_len"]
    x, y = gen(task, split)
    assert x.dtype == y.dtype == np.int64
    assert x.shape == y.shape == (N, INPUT_LENGTH[task](L))
    assert x.min() >= 0 and x.max() < V
    assert np.all((y == IGN) | ((y >= 0) & (y < V)))
    assert (y != IGN).any(axis=1).all()  # every example is scored somewhere
    assert T.vocab_size(task) == V == T.vocab_size(task, T.baseline(task))


@pytest.mark.parametrize("task", sorted(T.TASKS))
def test_determinism_and_distinct_splits(task):
    a, b = gen(task, "train", seed=3), gen(task, "train", seed=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], gen(task, "train", seed=4)[0])
    assert not np.array_equal(a[0], gen(task, "test", seed=3)[0])
    # the first examples do not depend on how many are drawn
    assert np.array_equal(gen(task, "train", n=4, seed=3)[0], a[0][:4])


@pytest.mark.parametrize("task", sorted(T.TASKS))
def test_global_numpy_rng_untouched(task):
    np.random.seed(0)
    _, key, pos, *_ = np.random.get_state()
    gen(task, "train", n=4)
    gen(task, "test", n=4)
    _, key_after, pos_after, *_ = np.random.get_state()
    assert np.array_equal(key_after, key) and pos_after == pos


@pytest.mark.parametrize("task", sorted(T.TASKS))
def test_all_settings_generate(task):
    for s in T.settings(task):
        for split in T.SPLITS:
            x, y = T.generate(task, split, 4, 0, **T.generator_kwargs(task, s))
            assert x.shape == y.shape == (4, INPUT_LENGTH[task](s["seq_len"]))
            assert x.max() < s["vocab_size"] and y.max() < s["vocab_size"]


@pytest.mark.parametrize("task", sorted(T.TASKS))
def test_cache_round_trip(task, tmp_path, monkeypatch):
    kw = {"vocab_size": T.baseline(task)["vocab_size"] * 2}
    x, y = T.load(task, "test", 8, 5, cache_dir=tmp_path, **kw)
    gx, gy = gen(task, "test", n=8, seed=5, **kw)
    assert np.array_equal(x, gx) and np.array_equal(y, gy)
    files = list(tmp_path.rglob("*"))
    npy = [f for f in files if f.is_file()]
    assert len(npy) == 1 and npy[0].suffix == ".npy" and not npy[0].name.startswith(".")
    assert T.setting_id(task, kw) in npy[0].name

    def boom(*a, **k):
        raise AssertionError("load regenerated data that were cached")

    monkeypatch.setattr(T, "generate", boom)
    cx, cy = T.load(task, "test", 8, 5, cache_dir=tmp_path, **kw)
    assert np.array_equal(cx, x) and np.array_equal(cy, y) and cx.dtype == np.int64


def test_cache_keys_and_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DELTALAB_DATA", str(tmp_path))
    task = "compression"
    T.load(task, "train", 4, 0)
    T.load(task, "train", 4, 1)
    T.load(task, "test", 4, 0)
    T.load(task, "train", 5, 0)
    T.load(task, "train", 4, 0, seq_len=64)
    T.load(task, "train", 4, 0)  # a hit: no new file
    assert len([f for f in tmp_path.rglob("*") if f.is_file()]) == 5
    x, _ = T.load_setting(task, {"num_train_examples": 6, "vocab_size": 32}, "train", seed=0)
    assert x.shape == (6, 32) and x.max() == 31


def test_cache_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    def failing_save(f, array):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError):
        T.load("compression", "train", 4, 0, cache_dir=tmp_path)
    assert [f for f in tmp_path.rglob("*") if f.is_file()] == []


# --- bad input -----------------------------------------------------------------------------------------


def test_bad_task_split_and_keys_raise_with_valid_names():
    with pytest.raises(ValueError, match="valid tasks.*in-context-recall"):
        T.generate("icr", "train", 4, 0)
    with pytest.raises(ValueError, match="valid tasks.*selective-copying"):
        T.settings("icr")
    with pytest.raises(ValueError, match="valid splits.*train.*test"):
        T.generate("compression", "val", 4, 0)
    with pytest.raises(ValueError, match=r"num_tokens_to_copy.*valid keys.*seq_len.*vocab_size"):
        T.generate("compression", "train", 4, 0, num_tokens_to_copy=3)
    with pytest.raises(ValueError, match="frac_noise"):
        T.generate("in-context-recall", "train", 4, 0, frac_noise=0.2)  # noise is the noisy task's key
    with pytest.raises(ValueError, match="valid keys"):
        T.setting_id("memorization", {"frac_noise": 0.1})
    with pytest.raises(ValueError, match="num_examples"):
        T.generate("compression", "train", 0, 0)
    with pytest.raises(ValueError, match="vocab_size must be int"):
        T.generate("compression", "train", 4, 0, vocab_size=16.5)


@pytest.mark.parametrize(
    "task, setting",
    [
        ("selective-copying", {"seq_len": 33, "num_tokens_to_copy": 16}),  # needs L > 2c + 1
        ("selective-copying", {"num_tokens_to_copy": 0}),
        ("noisy-in-context-recall", {"frac_noise": 1.0}),
        ("noisy-in-context-recall", {"noise_vocab_size": 0}),
        ("noisy-in-context-recall", {"vocab_size": 17}),  # one ordinary token
        ("in-context-recall", {"seq_len": 127}),
        ("fuzzy-in-context-recall", {"vocab_size": 6}),  # 2 keys, motifs need 3 distinct
        ("fuzzy-in-context-recall", {"seq_len": 12}),
        ("memorization", {"seq_len": 31}),
        ("compression", {"vocab_size": 1}),
    ],
)
def test_invalid_values_raise(task, setting):
    with pytest.raises(ValueError):
        T.generate(task, "train", 2, 0, **setting)


# --- recall tasks: the train/test rules of §1 -------------------------------------------------------------


@pytest.mark.parametrize("task", RECALL)
def test_recall_train_is_next_token_lm(task):
    x, y = gen(task, "train")
    assert (y != IGN).all()  # every position scored, random keys and noise included
    assert np.array_equal(y[:, :-1], x[:, 1:])  # targets are the inputs shifted by one


@pytest.mark.parametrize("task", RECALL)
def test_recall_test_scores_only_recall_positions(task):
    x, y = gen(task, "test")
    scored = y != IGN
    assert scored[:, -1].all()  # the final probe value
    assert scored.mean() < 0.5
    assert np.all(scored[:, :-1] <= (y[:, :-1] == x[:, 1:]))  # a scored target is the next input token


# --- in-context recall and noisy recall -------------------------------------------------------------------


def recall_layout(V, N=0):
    n = V - N
    return n // 2, n  # keys [0, n//2), values [n//2, n), noise [n, V)


@pytest.mark.parametrize("task, setting", [
    ("in-context-recall", {}),
    ("in-context-recall", {"vocab_size": 64, "seq_len": 256}),
    ("noisy-in-context-recall", {}),
    ("noisy-in-context-recall", {"frac_noise": 0.8, "vocab_size": 80}),
])
def test_icr_test_targets_are_values_bound_earlier(task, setting):
    s = T.generator_kwargs(task, setting)
    n_keys, n_plain = recall_layout(s["vocab_size"], s.get("noise_vocab_size", 0))
    x, y = gen(task, "test", **setting)
    seq = np.concatenate([x, y[:, -1:]], axis=1)  # y[-1] is the probe value, the last token of seq
    key_pos, val_pos = seq[:, 0::2], seq[:, 1::2]
    is_noise = key_pos >= n_plain
    assert np.all(is_noise == (val_pos >= n_plain))  # a noise slot is two noise tokens
    assert np.all((key_pos < n_keys) | is_noise)  # keys at even positions
    assert np.all(((val_pos >= n_keys) & (val_pos < n_plain)) | is_noise)  # values at odd positions
    assert not is_noise[:, -1].any()
    T_in = x.shape[1]
    for b in range(N):
        bound = {}
        for j in range(0, T_in, 2):
            k, last = x[b, j], j == T_in - 1
            if k >= n_plain:  # noise: never scored
                assert y[b, j] == IGN and y[b, j + 1] == IGN
                continue
            if not last:
                assert y[b, j + 1] == IGN  # y[j+1] predicts the next key, never scored
            if k in bound:
                assert y[b, j] == bound[k]  # every repeated key (and the probe) is scored with its value
            else:
                assert not last and y[b, j] == IGN  # the probe key was shown before; a new key is not scored
            value = y[b, j] if last else x[b, j + 1]
            assert bound.setdefault(k, value) == value  # one value per key within a sequence


@pytest.mark.parametrize("frac", [0.2, 0.6])
def test_noise_rate_and_layout(frac):
    x, _ = gen("noisy-in-context-recall", "train", n=200, frac_noise=frac)
    rate = (x[:, 0::2] >= 16).mean()  # baseline: noise tokens 16..31
    assert abs(rate - frac) < 0.03
    assert x.max() == 31 and 16 in x


def test_icr_without_multi_query_has_a_copy_prefix():
    V, L = 16, 64
    x, y = gen("in-context-recall", "test", vocab_size=V, seq_len=L, multi_query=False)
    assert x.shape == (N, L)  # the copy prefix adds a token
    assert np.all(x[:, -2] == V - 1) and not np.any(x[:, :-2] == V - 1)
    assert np.all((y != IGN).sum(axis=1) == 1) and np.all(y[:, -1] != IGN)
    assert x[:, :-2].max() < V - 1 and y[:, -1].min() >= (V - 1) // 2


def test_keys_repeat_and_maps_differ_between_sequences():
    x, _ = gen("in-context-recall", "train", n=64)
    maps = [dict(zip(x[b, 0:-1:2], x[b, 1::2])) for b in range(64)]  # 63 full slots per sequence
    assert all(len(m) <= 8 for m in maps)  # 63 slots over 8 keys: keys repeat
    assert len({tuple(sorted(m.items())) for m in maps}) > 32  # a fresh map per sequence


# --- fuzzy recall -----------------------------------------------------------------------------------------


def test_fr_padding_and_vocab():
    V = 16  # keys 0..6, values 7..14, pad 15
    for split in T.SPLITS:
        x, y = gen("fuzzy-in-context-recall", split)
        assert np.all(x[:, :2] == V - 1)  # left-padded to L+1 (at least two pads survive the shift)
        body = np.where(x == V - 1, -1, x)
        first_real = (body >= 0).argmax(axis=1)
        for b in range(N):  # pads only on the left
            assert np.all(x[b, : first_real[b]] == V - 1) and np.all(x[b, first_real[b] :] < V - 1)


def key_run_lengths(x_row, n_keys, pad):
    toks = x_row[x_row != pad]
    return [e - s for s, e in runs(toks < n_keys)]


def test_fr_key_motif_sizes_train_vs_test():
    n_keys, pad = 7, 15
    x_test, _ = gen("fuzzy-in-context-recall", "test")
    x_train, _ = gen("fuzzy-in-context-recall", "train")
    test_lengths = {n for row in x_test for n in key_run_lengths(row, n_keys, pad)[:-1]}
    train_lengths = {n for row in x_train for n in key_run_lengths(row, n_keys, pad)[:-1]}
    assert test_lengths == {3}  # every key is a 3-motif in test (the last run may be cut by the shift)
    assert train_lengths == {1, 2, 3}


def test_fr_key_motifs_have_distinct_tokens_and_values_sizes_1_to_3():
    n_keys, pad = 7, 15
    x, _ = gen("fuzzy-in-context-recall", "test")
    value_lengths = set()
    for row in x:
        toks = row[row != pad]
        for s, e in runs(toks < n_keys)[:-1]:
            assert len(set(toks[s:e])) == e - s
        for s, e in runs(toks >= n_keys)[:-1]:
            value_lengths.add(e - s)
            assert len(set(toks[s:e])) == e - s
    assert value_lengths == {1, 2, 3}


def test_fr_test_scored_values_follow_their_key_earlier():
    k_motif, n_keys = 3, 7
    x, y = gen("fuzzy-in-context-recall", "test", n=64)
    planted = 0
    for b in range(64):
        seq = list(x[b]) + [int(y[b, -1])]
        scored = runs(y[b] != IGN)
        assert scored[-1][1] == x.shape[1] and 1 <= scored[-1][1] - scored[-1][0] <= 3  # the final probe value
        for s, e in scored:
            value = seq[s + 1 : e + 1]
            assert value == list(y[b, s:e])
            assert all(n_keys <= v < 15 for v in value)
            key = seq[s + 1 - k_motif : s + 1]
            assert all(k < n_keys for k in key) and seq[s - k_motif] >= n_keys  # a whole 3-key motif
            earlier = contains(seq[: s + 1 - k_motif], key + value)
            if (s, e) != scored[-1]:
                assert earlier  # a repeated key, scored with the value it was bound to
            planted += earlier and (s, e) == scored[-1]
    assert planted >= 56  # the probe pair is planted earlier in nearly every sequence


def test_fr_noise_branch():
    V, Nz = 20, 4  # keys 0..6, values 7..14, noise 15..18, pad 19
    x, y = gen("fuzzy-in-context-recall", "test", vocab_size=V, noise_vocab_size=Nz, frac_noise=0.3)
    noise = (x >= 15) & (x < 19)
    assert 0.1 < noise.mean() < 0.5
    assert np.all(y[:, :-1][noise[:, 1:]] == IGN)  # a noise token is never a scored target


def test_fr_without_multi_query():
    V = 16  # pad 14, copy prefix 15, keys 0..6, values 7..13
    x, y = gen("fuzzy-in-context-recall", "test", multi_query=False)
    assert np.all(x[:, 0] == V - 2) and x.shape == (N, 128)
    scored = y != IGN
    for b in range(N):
        (s, e), = runs(scored[b])  # only the final probe value
        assert e == x.shape[1] and x[b, s - 3] == V - 1  # copy prefix before the 3-key probe
        assert np.sum(x[b] == V - 1) == 1


# --- selective copying ------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", [{}, {"num_tokens_to_copy": 32}, {"num_tokens_to_copy": 96, "vocab_size": 64}])
def test_selective_copy_layout(setting):
    s = T.generator_kwargs("selective-copying", setting)
    V, L, c = s["vocab_size"], s["seq_len"], s["num_tokens_to_copy"]
    copy, blank = V - 1, V - 2
    x, y = gen("selective-copying", "train", **setting)
    assert np.all(x[:, L - c - 1] == copy) and not np.any(x[:, : L - c - 1] == copy)
    assert np.all(x[:, L - c :] == blank)
    assert np.all(y[:, : L - c] == IGN) and np.all(y[:, L - c :] != IGN)
    body = x[:, : L - c - 1]
    for b in range(N):
        content = body[b][body[b] != blank]
        assert np.array_equal(content, y[b, L - c :])  # the non-blank tokens, in order
    assert np.all((body != blank).sum(axis=1) == c)
    assert y[:, L - c :].max() < blank
    assert len({tuple(np.flatnonzero(r != blank)) for r in body}) == N  # blank positions vary


# --- compression ------------------------------------------------------------------------------------------


def test_compression_layout():
    x, y = gen("compression", "train", seq_len=64, vocab_size=32)
    assert np.array_equal(x, y)
    assert np.all(x[:, -1] == 31) and x[:, :-1].max() < 31
    assert len(np.unique(x[:, :-1])) == 31  # uniform over [0, V-1)


# --- memorization ------------------------------------------------------------------------------------------


def test_memorization_targets_come_from_one_fact_table():
    V, seed = 256, 7
    facts = T.fact_table(V, seed)
    assert facts.shape == (127,) and len(set(facts)) == 127 and facts.min() >= 127 and facts.max() <= 254
    table = {}
    for split in T.SPLITS:
        x, y = gen("memorization", split, n=64, seed=seed)
        assert np.all(x[:, 1::2] == V - 1) and np.all(y[:, 0::2] == IGN)
        assert x[:, 0::2].max() < 127
        assert np.array_equal(y[:, 1::2], facts[x[:, 0::2]])
        for k, v in zip(x[:, 0::2].ravel(), y[:, 1::2].ravel()):
            assert table.setdefault(k, v) == v  # the same map in train and test
    assert not np.array_equal(T.fact_table(V, seed + 1), facts)  # the table follows the seed
    assert np.array_equal(T.fact_table(V, seed), facts)


def test_memorization_vocab_change_rescales_keys():
    x, y = gen("memorization", "test", vocab_size=8192)
    assert x[:, 0::2].max() < 4095 and np.all(x[:, 1::2] == 8191)
    assert y[:, 1::2].min() >= 4095 and y[:, 1::2].max() <= 8190
