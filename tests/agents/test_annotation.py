"""Tests of rollout annotation: schema, progress synthesis, JSONL store, auto-annotation (agents/annotation.py)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from agents import annotation as ann_mod
from agents.annotation import (
    FORMAT,
    LABELS,
    VERSION,
    AnnotatedSegment,
    AnnotationError,
    AnnotationFileError,
    AnnotationStore,
    AnnotationWarning,
    RolloutAnnotation,
    synthesize_progress,
)
from agents.auto_annotation import AutoAnnotateConfig, auto_annotate, find_catastrophe
from sarm2_env.dataset import EpisodeDataset

T0 = "2026-05-01T12:00:00+00:00"


def make(length: int = 10, final: float = 1.0, segments=(), catastrophic_frame=None, **kw) -> RolloutAnnotation:
    segs = tuple(AnnotatedSegment(*s) if isinstance(s, tuple) else s for s in segments)
    return RolloutAnnotation(
        episode_id=kw.pop("episode_id", "ep"),
        length=length,
        final_progress=final,
        segments=segs,
        catastrophic_frame=catastrophic_frame,
        annotator=kw.pop("annotator", "tester"),
        created=kw.pop("created", T0),
        updated=kw.pop("updated", T0),
        **kw,
    )


def rollout(progress, episode_id: str = "ep") -> types.SimpleNamespace:
    return types.SimpleNamespace(episode_id=episode_id, progress=np.asarray(progress, dtype=np.float32))


# --------------------------------------------------------------------------------------------------- schema


class TestSchema:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"start": -1, "end": 3, "label": "fast"}, "`start` must be >= 0; got -1"),
            ({"start": 3, "end": 3, "label": "fast"}, "`end` must be > start (3); got 3"),
            ({"start": 0, "end": 3, "label": "quick"}, "`label` must be one of"),
            ({"start": 0.5, "end": 3, "label": "fast"}, "`start` must be an int frame index; got float"),
            ({"start": True, "end": 3, "label": "fast"}, "`start` must be an int frame index; got bool"),
        ],
    )
    def test_segment_validation(self, kwargs, message):
        with pytest.raises(AnnotationError, match=None) as info:
            AnnotatedSegment(**kwargs)
        assert message in str(info.value)

    def test_segment_accepts_numpy_ints(self):
        seg = AnnotatedSegment(np.int64(2), np.int32(5), "slow")
        assert (seg.start, seg.end, len(seg), seg.weight) == (2, 5, 3, 1)
        assert type(seg.start) is int

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"final": 1.2}, "`final_progress` must be a number in [0, 1]; got 1.2"),
            ({"final": float("nan")}, "`final_progress` must be a number in [0, 1]"),
            ({"final": True}, "`final_progress` must be a number in [0, 1]; got True"),
            ({"length": 0}, "`length` must be an int >= 1; got 0"),
            ({"catastrophic_frame": 10}, "an int in [0, length) = [0, 10); got 10"),
            ({"catastrophic_frame": -1}, "`catastrophic_frame` must be None"),
            ({"annotator": " "}, "`annotator` must be a non-empty str"),
            ({"episode_id": ""}, "`episode_id` must be a non-empty str"),
            ({"created": "yesterday"}, "`created` must be an ISO 8601 date-time string; got 'yesterday'"),
            ({"segments": [(0, 11, "fast")]}, "`segments[0].end` must be <= length (10); got 11"),
        ],
    )
    def test_annotation_validation(self, kwargs, message):
        with pytest.raises(AnnotationError) as info:
            make(**kwargs)
        assert message in str(info.value)

    def test_overlap_names_both_segments(self):
        with pytest.raises(AnnotationError) as info:
            make(segments=[(6, 9, "slow"), (0, 4, "fast"), (3, 7, "mistake")])
        msg = str(info.value)
        assert "`segments` must not overlap" in msg
        assert "segments[1] [0, 4) 'fast'" in msg and "segments[2] [3, 7) 'mistake'" in msg
        assert "share frames [3, 4)" in msg

    def test_segments_sorted_touching_allowed_and_uncovered(self):
        a = make(segments=[(5, 8, "adjust"), (0, 2, "fast"), (2, 5, "mistake")])
        assert [s.start for s in a.segments] == [0, 2, 5]
        assert isinstance(a.segments, tuple)
        assert a.uncovered() == [(8, 10)]
        assert a.frame_labels() == ["fast"] * 2 + ["mistake"] * 3 + ["adjust"] * 3 + ["slow"] * 2
        assert make().uncovered() == [(0, 10)]

    def test_z_suffix_timestamp_and_touched(self):
        a = make(created="2026-05-01T12:00:00Z", updated="2026-05-01T12:00:00Z")
        b = a.touched(final_progress=0.5)
        assert b.created == a.created and b.updated != a.updated and b.final_progress == 0.5

    def test_json_round_trip(self):
        a = make(final=0.75, segments=[(0, 3, "fast"), (5, 7, "mistake")], catastrophic_frame=8, notes="dropped")
        line = a.to_json()
        assert "\n" not in line
        data = json.loads(line)
        assert data["format"] == FORMAT and data["version"] == VERSION
        assert data["segments"] == [{"start": 0, "end": 3, "label": "fast"}, {"start": 5, "end": 7, "label": "mistake"}]
        assert RolloutAnnotation.from_json(line) == a

    def test_from_dict_optional_keys_default(self):
        data = {k: v for k, v in make().to_dict().items() if k not in ("catastrophic_frame", "notes")}
        a = RolloutAnnotation.from_dict(data)
        assert a.catastrophic_frame is None and a.notes == ""

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"colour": "red"}, "got unknown ['colour']"),
            ({"format": "other"}, "`format` must be 'sarm2-rollout-annotation'; got 'other'"),
            ({"version": 2}, "`version` must be 1; got 2 (written by a newer sarm2?)"),
            ({"segments": {"start": 0}}, "`segments` must be a list of objects; got dict"),
            ({"segments": [{"start": 0, "end": 2}]}, "`segments[0]`: a segment must have exactly the keys"),
            ({"segments": [{"start": 0, "end": 2, "label": "x"}]}, "`segments[0]`: `label` must be one of"),
        ],
    )
    def test_from_dict_strict(self, change, message):
        data = make().to_dict() | change
        with pytest.raises(AnnotationError) as info:
            RolloutAnnotation.from_dict(data)
        assert message in str(info.value)

    def test_from_dict_missing_and_not_json(self):
        data = make().to_dict()
        del data["final_progress"]
        with pytest.raises(AnnotationError, match=r"keys \['final_progress'\] are required"):
            RolloutAnnotation.from_dict(data)
        data = make().to_dict()
        del data["created"]
        with pytest.raises(AnnotationError, match=r"keys \['created'\] are required"):
            RolloutAnnotation.from_dict(data)
        with pytest.raises(AnnotationError, match="not valid JSON"):
            RolloutAnnotation.from_json('{"format": ')


# --------------------------------------------------------------------------------------------------- synthesis


class TestSynthesize:
    def check(self, annotation, expected):
        curve = synthesize_progress(annotation)
        assert curve.dtype == np.float32 and curve.shape == (annotation.length,)
        np.testing.assert_allclose(curve, expected, atol=1e-7)

    def test_unlabelled_is_time_linear(self):
        self.check(make(5, 0.8), [0, 0.2, 0.4, 0.6, 0.8])

    def test_slopes_two_to_one(self):
        # weights of steps 0..2: fast, slow, slow -> cumulative 0, 2, 3, 4
        self.check(make(4, 1.0, [(0, 1, "fast"), (1, 3, "slow")]), [0, 0.5, 0.75, 1.0])
        # uncovered frames count as slow: same curve without the slow segment
        self.check(make(4, 1.0, [(0, 1, "fast")]), [0, 0.5, 0.75, 1.0])

    def test_adjust_is_flat_and_mistake_goes_down(self):
        # steps: fast fast adjust mistake slow -> cum 0 2 4 4 3 4; s = 0.8 / 4
        self.check(make(6, 0.8, [(0, 2, "fast"), (2, 3, "adjust"), (3, 4, "mistake")]), [0, 0.4, 0.8, 0.8, 0.6, 0.8])

    def test_clipped_below_zero_and_above_one(self):
        # mistake first: cum 0 -1 -2 0 2 4, s = 0.2 -> dips below 0, clipped, still ends at 0.8
        self.check(make(6, 0.8, [(0, 2, "mistake"), (2, 6, "fast")]), [0, 0, 0, 0, 0.4, 0.8])
        # overshoot: cum 0 2 4 6 5 4, s = 0.25 -> 1.5 and 1.25 clipped to 1
        self.check(make(6, 1.0, [(0, 3, "fast"), (3, 6, "mistake")]), [0, 0.5, 1.0, 1.0, 1.0, 1.0])

    def test_last_frame_label_has_no_effect(self):
        base = synthesize_progress(make(5, 0.6))
        np.testing.assert_array_equal(synthesize_progress(make(5, 0.6, [(4, 5, "mistake")])), base)

    def test_catastrophe_zero_after_and_final_before(self):
        self.check(make(6, 0.6, catastrophic_frame=3), [0, 0.3, 0.6, 0, 0, 0])
        self.check(make(4, 0.7, catastrophic_frame=0), [0, 0, 0, 0])
        self.check(make(4, 0.7, catastrophic_frame=1), [0.7, 0, 0, 0])

    @pytest.mark.parametrize(
        ("segments", "final", "expected"),
        [
            ([(0, 5, "adjust")], 0.5, [0, 0.125, 0.25, 0.375, 0.5]),  # W == 0: linear ramp
            ([(0, 5, "adjust")], 0.0, [0, 0, 0, 0, 0]),  # W == 0, final 0: flat, honours the labels
            ([(0, 3, "mistake")], 0.4, [0, 0.1, 0.2, 0.3, 0.4]),  # W < 0 (-1 -1 -1 +1): ramp
            ([(0, 2, "fast")], 0.0, [0, 0, 0, 0, 0]),  # W > 0, final 0: s = 0
        ],
    )
    def test_degenerate_weight_sum(self, segments, final, expected):
        self.check(make(5, final, segments), expected)

    def test_single_frame(self):
        self.check(make(1, 0.3), [0.3])

    def test_invariants_on_random_annotations(self):
        rng = np.random.default_rng(0)
        for _ in range(200):
            length = int(rng.integers(2, 40))
            cuts = np.sort(rng.choice(np.arange(length + 1), size=min(length + 1, 6), replace=False))
            segs = [
                AnnotatedSegment(int(a), int(b), LABELS[rng.integers(4)])
                for a, b in zip(cuts[:-1], cuts[1:])
                if rng.random() < 0.8
            ]
            cat = int(rng.integers(0, length)) if rng.random() < 0.3 else None
            a = make(length, float(rng.random()), segs, cat)
            curve = synthesize_progress(a)
            assert curve.min() >= 0 and curve.max() <= 1
            active = a.active_length
            assert np.all(curve[active:] == 0)
            if active > 1:
                assert curve[0] == 0
                assert curve[active - 1] == pytest.approx(a.final_progress, abs=1e-6)


# --------------------------------------------------------------------------------------------------- store


class TestStore:
    def test_missing_file_is_empty(self, tmp_path):
        store = AnnotationStore(tmp_path / "none.jsonl")
        assert store.load() == {} and len(store) == 0 and "ep" not in store

    def test_upsert_insert_replace_keeps_created_and_order(self, tmp_path):
        path = tmp_path / "sub" / "labels.jsonl"
        store = AnnotationStore(path)
        store.upsert(make(episode_id="a"))
        store.upsert(make(episode_id="b", final=0.5))
        newer = make(episode_id="a", final=0.25, created="2026-06-01T00:00:00+00:00", updated="2026-06-01T00:00:00Z")
        stored = store.upsert(newer)
        assert stored.created == T0 and stored.updated == "2026-06-01T00:00:00Z"
        loaded = store.load()
        assert list(loaded) == ["a", "b"]
        assert loaded["a"].final_progress == 0.25 and loaded["a"].created == T0
        lines = path.read_text().splitlines()
        assert len(lines) == 2 and all(json.loads(line)["format"] == FORMAT for line in lines)
        assert [p.name for p in path.parent.iterdir() if ".tmp-" in p.name] == []

    def test_corrupted_line_strict_and_lenient(self, tmp_path):
        path = tmp_path / "labels.jsonl"
        good_a, good_c = make(episode_id="a").to_json(), make(episode_id="c").to_json()
        bad = make(episode_id="b").to_json()[:-20]  # truncated write
        path.write_text(f"{good_a}\n\n{bad}\n{good_c}\n")
        store = AnnotationStore(path)
        with pytest.raises(AnnotationFileError) as info:
            store.load()
        assert info.value.line == 3 and str(path) in str(info.value) and ":3:" in str(info.value)
        assert "not valid JSON" in str(info.value)
        with pytest.warns(AnnotationWarning, match=r"labels.jsonl:3: skipped a bad annotation line"):
            loaded = store.load(strict=False)
        assert list(loaded) == ["a", "c"]
        assert [b.line for b in store.bad_lines] == [3]
        # rewriting keeps the bad line verbatim, in place, and loses nothing
        store.upsert(make(episode_id="d"))
        lines = path.read_text().splitlines()
        assert lines == [good_a, bad, good_c, make(episode_id="d").to_json()]
        assert store.unannotated(["a", "b", "c", "d", "e"]) == ["b", "e"]

    def test_invalid_annotation_line_named(self, tmp_path):
        path = tmp_path / "labels.jsonl"
        data = make(episode_id="a").to_dict() | {"final_progress": 3}
        path.write_text(make(episode_id="z").to_json() + "\n" + json.dumps(data) + "\n")
        with pytest.raises(AnnotationFileError, match=r":2: `final_progress` must be a number in \[0, 1\]; got 3"):
            AnnotationStore(path).load()

    def test_duplicate_lines_later_wins(self, tmp_path):
        path = tmp_path / "labels.jsonl"
        path.write_text(make(episode_id="a", final=0.1).to_json() + "\n" + make(episode_id="a", final=0.9).to_json())
        store = AnnotationStore(path)
        assert store.load()["a"].final_progress == 0.9
        store.upsert(make(episode_id="a", final=0.5))
        assert len(path.read_text().splitlines()) == 1 and store.load()["a"].final_progress == 0.5

    def test_not_utf8_refuses_to_write(self, tmp_path):
        path = tmp_path / "labels.jsonl"
        raw = (make(episode_id="a").to_json() + "\n").encode() + b"\xff\xfe garbage\n"
        path.write_bytes(raw)
        store = AnnotationStore(path)
        with pytest.raises(AnnotationFileError) as info:
            store.load(strict=False)
        assert info.value.line == 2 and "not UTF-8" in str(info.value)
        with pytest.raises(AnnotationFileError):
            store.upsert(make(episode_id="b"))
        assert path.read_bytes() == raw

    def test_failed_rewrite_keeps_old_file(self, tmp_path, monkeypatch):
        path = tmp_path / "labels.jsonl"
        store = AnnotationStore(path)
        store.upsert(make(episode_id="a"))
        before = path.read_bytes()

        def boom(src, dst):
            raise OSError("disk full")

        monkeypatch.setattr(ann_mod.os, "replace", boom)
        with pytest.raises(AnnotationFileError, match="could not write the annotation file"):
            store.upsert(make(episode_id="b"))
        assert path.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []

    def test_resume_against_dataset(self, tmp_path, rollout_dataset):
        ds = EpisodeDataset(rollout_dataset)
        store = AnnotationStore(tmp_path / "labels.jsonl")
        assert store.unannotated(ds) == ["ep0", "ep1", "ep2"]
        store.upsert(make(20, episode_id="ep1"))
        assert store.unannotated(ds) == ["ep0", "ep2"]
        assert store.check_against(ds) == []
        store.upsert(make(10, episode_id="ep0"))
        store.upsert(make(10, episode_id="gone"))
        problems = store.check_against(ds)
        assert any("'ep0': `length` must be 20" in p for p in problems)
        assert any("'gone' is annotated but not in" in p for p in problems)

    def test_human_written_line_with_z_and_no_optional_keys(self, tmp_path):
        path = tmp_path / "labels.jsonl"
        line = (
            '{"format": "sarm2-rollout-annotation", "version": 1, "episode_id": "ep0", "length": 4, '
            '"final_progress": 1, "segments": [{"label": "fast", "start": 0, "end": 2}], "annotator": "bob", '
            '"created": "2026-05-01T12:00:00Z", "updated": "2026-05-01T12:00:00Z"}'
        )
        path.write_text(line + "\n")
        a = AnnotationStore(path).load()["ep0"]
        np.testing.assert_allclose(synthesize_progress(a), [0, 0.4, 0.8, 1.0], atol=1e-7)


# --------------------------------------------------------------------------------------------------- auto


def piecewise(weights, v, noise=0.0, seed=0):
    p = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=float) * v)])
    if noise:
        p = p + np.random.default_rng(seed).normal(0, noise, size=len(p))
    return np.clip(p, 0, 1)


class TestAutoAnnotate:
    WEIGHTS = [1] * 30 + [2] * 20 + [0] * 15 + [-1] * 10 + [1] * 30

    def test_piecewise_curve_recovers_labels(self):
        gt = piecewise(self.WEIGHTS, 0.9 / 90)
        a = auto_annotate(rollout(gt))
        curve = synthesize_progress(a)
        assert np.mean((curve - gt) ** 2) < 5e-4
        assert a.annotator == "auto" and a.catastrophic_frame is None
        assert a.final_progress == pytest.approx(gt[-1], abs=1e-6)
        assert [s.label for s in a.segments] == ["slow", "fast", "adjust", "mistake", "slow"]
        assert a.segments[0].start == 0 and a.segments[-1].end == len(gt) and a.uncovered() == []
        for seg, start in zip(a.segments, [0, 30, 50, 65, 75]):
            assert abs(seg.start - start) <= 2

    def test_noisy_and_smooth_curves_tracked(self):
        noisy = piecewise(self.WEIGHTS, 0.9 / 90, noise=0.005)
        assert np.mean((synthesize_progress(auto_annotate(rollout(noisy))) - noisy) ** 2) < 2e-3
        t = np.linspace(0, 1, 150)
        smooth = 1 / (1 + np.exp(-10 * (t - 0.5)))
        smooth = (smooth - smooth[0]) / (smooth[-1] - smooth[0]) * 0.95
        assert np.mean((synthesize_progress(auto_annotate(rollout(smooth))) - smooth) ** 2) < 2e-3

    def test_catastrophe_detected_and_zeroed(self):
        gt = np.concatenate([np.linspace(0, 0.6, 60), np.full(40, 0.05)])
        a = auto_annotate(rollout(gt))
        assert a.catastrophic_frame == 60
        assert a.final_progress == pytest.approx(0.6, abs=1e-6)
        assert a.segments[-1].end == 60
        curve = synthesize_progress(a)
        assert np.all(curve[60:] == 0)
        assert np.mean((curve - gt) ** 2) < 2e-3

    def test_recovered_drop_is_a_mistake_not_a_catastrophe(self):
        # a sharp drop of 0.4 that is made good again: no catastrophe
        sharp = np.concatenate([np.linspace(0, 0.6, 40), np.linspace(0.6, 0.2, 10), np.linspace(0.2, 1.0, 50)])
        assert find_catastrophe(sharp, 0.25) is None
        assert auto_annotate(rollout(sharp)).catastrophic_frame is None
        # a drop of 0.3 at the model's mistake slope (-s), then fast recovery: labelled and tracked
        gt = piecewise([1] * 40 + [-1] * 25 + [2] * 34, 0.012)
        a = auto_annotate(rollout(gt))
        assert a.catastrophic_frame is None
        assert [s.label for s in a.segments] == ["slow", "mistake", "fast"]
        assert np.mean((synthesize_progress(a) - gt) ** 2) < 5e-4
        # a drop that does not recover is one, unless detection is off
        fell = np.concatenate([sharp[:45], np.full(20, 0.3)])
        assert find_catastrophe(fell, 0.25) == 45  # first frame more than 0.25 below the peak 0.6
        assert auto_annotate(rollout(fell), AutoAnnotateConfig(drop_threshold=None)).catastrophic_frame is None

    def test_flat_rollout_is_adjust(self):
        a = auto_annotate(rollout(np.zeros(30)))
        assert [s.label for s in a.segments] == ["adjust"] and a.final_progress == 0.0
        assert np.all(synthesize_progress(a) == 0)

    def test_on_a_dataset_episode(self, rollout_factory):
        ep = rollout_factory(25, episode_id="ep7")
        a = auto_annotate(ep)
        assert a.episode_id == "ep7" and a.length == 25 and a.final_progress == 1.0
        np.testing.assert_allclose(synthesize_progress(a), ep.progress, atol=1e-6)

    def test_errors(self):
        with pytest.raises(AnnotationError, match="`episode_id` must be a non-empty str"):
            auto_annotate(rollout(np.zeros(5), episode_id=""))
        assert auto_annotate(rollout(np.zeros(5), episode_id=""), episode_id="x").episode_id == "x"
        with pytest.raises(AnnotationError, match=r"`progress` must lie in \[0, 1\]"):
            auto_annotate(rollout([0, 2.0]))
        with pytest.raises(AnnotationError, match="`window` must be an int >= 1; got 0"):
            AutoAnnotateConfig(window=0)
        with pytest.raises(AnnotationError, match=r"`drop_threshold` must be None or a number in \(0, 1\]"):
            AutoAnnotateConfig(drop_threshold=0)

    def test_round_trip_through_store(self, tmp_path):
        a = auto_annotate(rollout(piecewise(self.WEIGHTS, 0.009)))
        store = AnnotationStore(tmp_path / "auto.jsonl")
        store.upsert(a)
        b = store.load()["ep"]
        np.testing.assert_array_equal(synthesize_progress(b), synthesize_progress(a))


def test_module_docstring_documents_the_format():
    doc = ann_mod.__doc__
    for key in RolloutAnnotation.__dataclass_fields__:
        assert f"``{key}``" in doc
    assert FORMAT in doc and "Synthesis rule" in doc
