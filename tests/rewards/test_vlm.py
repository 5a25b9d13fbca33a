"""Zero-shot VLM judges (GVL, TOPReward, RoboReward-style) and their backends.

Fake backends check prompting, shuffling and scoring exactly; a tiny random-init VLM built offline (Qwen2.5-VL and
Idefics3 families) runs the real transformers path end to end; a loopback HTTP server checks the OpenAI-compatible
client. Nothing here downloads anything.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from rewards.registry import make_reward_model
from rewards.vlm import (
    HTTPVLM,
    GVLRewardModel,
    LocalVLM,
    RoboRewardPromptModel,
    TOPRewardModel,
    VLMConnectionError,
    VLMReplyError,
    make_vlm,
    task_instruction,
)
from rewards.vlm.backends import encode_png
from rewards.vlm.prompts import (
    IMAGE,
    evenly_spaced,
    gvl_prompt,
    parse_gvl_reply,
    parse_score_reply,
    roboreward_prompt,
    score_to_progress,
    split_prompt,
    topreward_prompt,
)
from sarm2_env.constants import CAMERAS, STATE_DIM
from sarm2_env.errors import ConfigError, InputShapeError, WeightsNotFoundError

INSTRUCTION = "fold the shorts"


# --- helpers -----------------------------------------------------------------------------------------------
def frames_of(length: int, size: int = 8) -> dict[str, np.ndarray]:
    """Frames whose pixel value is the frame index on ``top`` (255 - index elsewhere), so fakes can tell them apart."""
    t = np.arange(length, dtype=np.uint8)[:, None, None, None]
    top = np.broadcast_to(t, (length, size, size, 3)).copy()
    return {cam: top if cam == "top" else 255 - top for cam in CAMERAS}


def episode_of(length: int, instruction: str = INSTRUCTION):
    from sarm2_env.dataset import Episode

    return Episode.create(
        task_id="SARM2/FoldShorts-v0",
        instruction=instruction,
        seed=0,
        skill=1.0,
        success=True,
        fps=10.0,
        state=np.zeros((length, STATE_DIM), np.float32),
        action=np.zeros((length, STATE_DIM), np.float32),
        primitive=np.zeros(length, np.int16),
        progress=np.linspace(0, 1, length, dtype=np.float32),
        success_flags=np.arange(length) == length - 1,
        timestamp=np.arange(length) / 10.0,
        frames=frames_of(length),
    )


def frame_ids(images) -> list[int]:
    return [int(np.asarray(im)[0, 0, 0]) for im in images]


class FakeVLM:
    """Records every call; ``reply(ids, prompt)`` / ``logprobs(ids, prompt)`` answer from the frame indices shown."""

    label = "fake VLM, test"

    def __init__(self, reply=None, logprobs=None):
        self.reply, self.logprobs, self.calls = reply, logprobs, []

    def generate(self, images, prompt, max_new_tokens=256):
        assert prompt.count(IMAGE) == len(images)
        ids = frame_ids(images)
        self.calls.append(("generate", ids, prompt))
        return self.reply.pop(0) if isinstance(self.reply, list) else self.reply(ids, prompt)

    def next_token_logprobs(self, images, prompt, candidates):
        assert prompt.count(IMAGE) == len(images)
        ids = frame_ids(images)
        self.calls.append(("logprobs", ids, prompt))
        return self.logprobs(ids, prompt)


def gvl_oracle(truth):
    """A GVL fake answering each shown frame's true percentage, lines in reverse order, with descriptions."""

    def reply(ids, prompt):
        lines = [
            f"Frame {j}: Frame Description: the arm moves. Task Completion Percentage: {truth(t):.6f}%"
            for j, t in enumerate(ids[1:], start=1)
        ]
        return "Sure, here you go:\n" + "\n".join(reversed(lines))

    return reply


def run_online(model, frames: dict[str, np.ndarray], task: str = INSTRUCTION, info=None) -> np.ndarray:
    session = model.start(task)
    out = []
    for t in range(len(frames["top"])):
        session.info = dict(info or {})
        raw = model.encode_frames(np.stack([frames[c][t] for c in CAMERAS])[None])  # (1, C, H, W, 3)
        out.append(float(model.step_batch([session], raw, np.zeros((1, STATE_DIM), np.float32))[0]))
    return np.array(out)


# --- prompts and parsers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Frame 1: 10%\nFrame 2: 55%\nFrame 3: 100%", [10, 55, 100]),
        (  # GVL's own answer style, markdown, a description mentioning another frame, a draft then an answer
            "Let me look.\n- **Frame 2**: Frame Description: more folded than frame 1. Task Completion: 55 %\n"
            "* Frame 1: gripper open, Task Completion Percentages: 12.5%\n"
            "Frame 3: done; 99%\nFinal: Frame 3: 100%",
            [12.5, 55, 100],
        ),
        ('```json\n{"Frame 1": "10%", "Frame 2": 55, "Frame 3": 100}\n```', [10, 55, 100]),
        (
            'Answer: [{"frame": 3, "completion": 90}, {"frame": 1, "completion": 5}, {"frame": 2, "progress": 40}]',
            [5, 40, 90],
        ),
        ('{"completion": [20, 30, 40]}', [20, 30, 40]),
        ("Frame 1: 0.1\nFrame 2: 0.55\nFrame 3: 1.0", [10, 55, 100]),  # fractions without % -> percentages
        ("Frame 1: 20% -> Frame 2: 40% -> Frame 3: 60%", [20, 40, 60]),
        ("Frame 1: -5%\nFrame 2: 50%\nFrame 3: 130%\nFrame 9: 70%", [0, 50, 100]),  # clipped; frame 9 ignored
    ],
)
def test_parse_gvl_reply_reads_good_and_messy_replies(reply, expected):
    np.testing.assert_allclose(parse_gvl_reply(reply, 3), expected)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ("Frame 1: 10%\nFrame 3: 90%", r"missing frames \[2\]"),
        ("I cannot tell from these images.", "no per-frame"),
        ("", "no per-frame"),
        ('{"note": "no idea"}', "no per-frame"),
    ],
)
def test_parse_gvl_reply_never_fills_gaps(reply, match):
    with pytest.raises(VLMReplyError, match=match):
        parse_gvl_reply(reply, 3)


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("ANSWER: 4", 4),
        ("**ANSWER:** 2", 2),
        ("The arm lifted the cloth but did not fold it.\nANSWER: 3", 3),
        ("Score: 5/5", 5),
        ("I would rate it 2 out of 5.", 2),
        ("1", 1),
        ("Reasoning: first ANSWER: 2 ... on reflection ANSWER: 4", 4),
    ],
)
def test_parse_score_reply(reply, score):
    assert parse_score_reply(reply) == score


@pytest.mark.parametrize("reply", ["ANSWER: 7", "ANSWER: 0", "ANSWER: 3.5", "maybe 2 or 3", "no idea", ""])
def test_parse_score_reply_rejects_garbage_and_off_scale(reply):
    with pytest.raises(VLMReplyError):
        parse_score_reply(reply)


def test_score_mapping_and_prompt_helpers():
    np.testing.assert_allclose(score_to_progress([1, 2, 3, 4, 5]), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(evenly_spaced(10, 4), [0, 3, 6, 9])
    np.testing.assert_array_equal(evenly_spaced(3, 16), [0, 1, 2])
    np.testing.assert_array_equal(evenly_spaced(7, 1), [6])
    assert split_prompt(f"a{IMAGE}b{IMAGE}", 2) == ["a", 0, "b", 1]
    assert split_prompt("text", 2) == [0, 1, "text"]
    with pytest.raises(ConfigError, match="placeholders"):
        split_prompt(f"{IMAGE}", 2)
    prompt = gvl_prompt(INSTRUCTION, 5)
    assert prompt.count(IMAGE) == 6 and INSTRUCTION in prompt and "Frame 5:" in prompt and "0%" in prompt
    assert topreward_prompt(INSTRUCTION, 3).count(IMAGE) == 3 and "True or False" in topreward_prompt(INSTRUCTION, 1)
    assert "ANSWER" in roboreward_prompt(INSTRUCTION, 2) and roboreward_prompt(INSTRUCTION, 2).count(IMAGE) == 2
    custom = "Task {instruction}. {frames} Done? True/False"
    assert topreward_prompt("x", 2, custom) == f"Task x. {IMAGE}\n{IMAGE} Done? True/False"
    with pytest.raises(ConfigError, match="template"):
        topreward_prompt("x", 2, "no frames field {instruction}")
    with pytest.raises(ConfigError, match="template"):
        gvl_prompt("x", 2, "{unknown}")


# --- GVL ---------------------------------------------------------------------------------------------------
def test_gvl_shuffles_then_unshuffles_to_the_true_percentages():
    length = 40
    truth = lambda t: 100.0 * (t / (length - 1)) ** 2  # noqa: E731  (non-linear: an index copy would not match)
    fake = FakeVLM(reply=gvl_oracle(truth))
    model = GVLRewardModel(fake, num_frames=10)
    out = model.predict_episode(episode_of(length))
    idx = out.query_indices
    np.testing.assert_array_equal(idx, evenly_spaced(length, 10))
    assert out.normalization == "none" and out.progress.shape == (length,) and out.progress.dtype == np.float32
    np.testing.assert_allclose(out.progress[idx], [truth(t) / 100 for t in idx], atol=1e-6)
    np.testing.assert_allclose(out.progress, np.interp(np.arange(length), idx, out.progress[idx]), atol=1e-6)
    ((kind, shown, prompt),) = fake.calls
    assert kind == "generate" and shown[0] == 0  # the first frame is the anchored initial scene
    assert sorted(shown[1:]) == list(idx[1:]) and shown[1:] != list(idx[1:])  # the rest are shuffled
    assert INSTRUCTION in prompt and prompt.count(IMAGE) == 10
    # the same episode gives the same shuffle (seeded by config seed and length)
    model.predict_episode(episode_of(length))
    assert fake.calls[1][1] == shown
    other = FakeVLM(reply=gvl_oracle(truth))
    again = GVLRewardModel(other, num_frames=10, seed=1).predict_episode(episode_of(length))
    assert other.calls[0][1] != shown  # another seed, another order; the same answers once un-shuffled
    np.testing.assert_allclose(again.progress, out.progress, atol=1e-6)


def test_gvl_reads_the_configured_camera_and_accepts_raw_frame_arrays():
    length = 12
    fake = FakeVLM(reply=gvl_oracle(lambda t: 100.0 * t / (length - 1)))
    model = GVLRewardModel(fake, num_frames=4, camera="left_wrist")
    frames = frames_of(length)
    # left_wrist holds 255 - t: the oracle's answers (from the pixel value) show which camera was read
    ep = SimpleNamespace(frames=frames, instruction=INSTRUCTION, task_id="x")
    model.predict_episode(ep)
    assert fake.calls[-1][1][0] == 255
    stacked = np.stack([frames[c] for c in CAMERAS], axis=1)  # (T, C, H, W, 3)
    model.predict_episode(SimpleNamespace(instruction=INSTRUCTION, task_id="x"), stacked)
    assert fake.calls[-1][1][0] == 255
    with pytest.raises(InputShapeError, match="frames=True"):
        model.predict_episode(SimpleNamespace(instruction=INSTRUCTION, task_id="x", frames={}))


def test_gvl_retries_unreadable_replies_then_raises():
    length = 10
    good = gvl_oracle(lambda t: 10.0 * t)
    replies = ["I am not sure.", "Frame 1: 10%"]  # garbage, then missing frames, then a good one
    fake = FakeVLM(reply=lambda ids, prompt: replies.pop(0) if replies else good(ids, prompt))
    out = GVLRewardModel(fake, num_frames=4, max_retries=2).predict_episode(episode_of(length))
    assert len(fake.calls) == 3 and "format" in fake.calls[1][2]  # retries add a format reminder
    assert fake.calls[1][1][1:] != fake.calls[0][1][1:] or fake.calls[2][1][1:] != fake.calls[0][1][1:]  # reshuffled
    np.testing.assert_allclose(out.progress[out.query_indices], [0.1 * t for t in out.query_indices], atol=1e-6)

    fake = FakeVLM(reply=lambda ids, prompt: "Frame 1: 50%")
    with pytest.raises(VLMReplyError, match=r"after 2 attempts.*missing frames"):
        GVLRewardModel(fake, num_frames=4, max_retries=1).predict_episode(episode_of(length))
    assert len(fake.calls) == 2


def test_gvl_single_frame_needs_no_query():
    fake = FakeVLM(reply=lambda ids, prompt: pytest.fail("no VLM call expected"))
    out = GVLRewardModel(fake).predict_episode(episode_of(1))
    np.testing.assert_array_equal(out.progress, [0.0])


# --- TOPReward ---------------------------------------------------------------------------------------------
def test_topreward_minmax_normalises_the_true_logprob_and_keeps_raw_values():
    length, max_images = 30, 4
    returned = []

    def logprobs(ids, prompt):
        value = {"True": -6.0 + 5.0 * np.sqrt(ids[-1] / (length - 1)), "False": -0.5 - ids[-1] / 100}
        returned.append(value)
        return value

    fake = FakeVLM(logprobs=logprobs)
    model = TOPRewardModel(fake, num_prefixes=6, max_images=max_images)
    out = model.predict_episode(episode_of(length))
    ends = out.query_indices
    np.testing.assert_array_equal(ends, evenly_spaced(length, 6))
    assert out.normalization == "per-episode-minmax"
    raw = np.array([r["True"] for r in returned])
    np.testing.assert_allclose(out.extras["raw_logprob"][ends], raw, rtol=1e-6)
    np.testing.assert_allclose(out.extras["raw_logprob_false"][ends], [r["False"] for r in returned], rtol=1e-6)
    np.testing.assert_allclose(out.progress[ends], (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    assert out.progress[0] == 0 and out.progress[-1] == pytest.approx(1)
    assert out.extras["raw_logprob"].shape == (length,)
    for (kind, shown, prompt), end in zip(fake.calls, ends):
        # each prefix: its frames in time order, from the first to the prefix end, at most max_images of them
        assert kind == "logprobs" and shown[0] == 0 and shown[-1] == end and shown == sorted(shown)
        assert len(shown) <= max_images and INSTRUCTION in prompt and "True or False" in prompt


def test_topreward_flat_logprobs_give_a_flat_zero_curve():
    fake = FakeVLM(logprobs=lambda ids, prompt: {"True": -1.0, "False": -2.0})
    out = TOPRewardModel(fake, num_prefixes=4).predict_episode(episode_of(9))
    np.testing.assert_array_equal(out.progress, np.zeros(9))
    np.testing.assert_allclose(out.extras["raw_logprob"], -1.0)


def test_topreward_missing_candidate_is_an_error():
    fake = FakeVLM(logprobs=lambda ids, prompt: {"Yes": -1.0})
    with pytest.raises(VLMReplyError, match="log-prob"):
        TOPRewardModel(fake, num_prefixes=2).predict_episode(episode_of(4))


# --- RoboReward-style --------------------------------------------------------------------------------------
def test_roboreward_maps_scores_to_progress_with_retries():
    length = 21

    def reply(ids, prompt):  # score 1..5 from how far the prefix got; the first prefix answers with prose first
        score = 1 + round(4 * ids[-1] / (length - 1))
        return f"The cloth looks partly folded.\nANSWER: {score}"

    fake = FakeVLM(reply=reply)
    model = RoboRewardPromptModel(fake, num_prefixes=5, max_images=3)
    out = model.predict_episode(episode_of(length))
    ends = out.query_indices
    np.testing.assert_array_equal(ends, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(out.progress[ends], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(out.extras["score"][ends], [1, 2, 3, 4, 5])
    assert all(len(ids) <= 3 and ids[-1] == end for (_, ids, _), end in zip(fake.calls, ends))
    assert "ANSWER" in fake.calls[0][2]

    replies = ["no idea", "ANSWER: 9", "ANSWER: 5"]
    fake = FakeVLM(reply=replies)
    out = RoboRewardPromptModel(fake, num_prefixes=1, max_retries=2).predict_episode(episode_of(3))
    np.testing.assert_allclose(out.progress, [1, 1, 1])
    assert len(fake.calls) == 3
    with pytest.raises(VLMReplyError, match="after 1 attempt"):
        RoboRewardPromptModel(FakeVLM(reply=["nope"]), num_prefixes=1, max_retries=0).predict_episode(episode_of(3))


# --- online ------------------------------------------------------------------------------------------------
def _judges(length: int, query_every: int):
    return [
        GVLRewardModel(
            FakeVLM(reply=gvl_oracle(lambda t: 100.0 * t / (length - 1))), num_frames=5, query_every=query_every
        ),
        TOPRewardModel(
            FakeVLM(logprobs=lambda ids, p: {"True": -3.0 + np.sin(ids[-1]) + 0.1 * len(ids), "False": -1.0}),
            num_prefixes=4,
            max_images=3,
            query_every=query_every,
        ),
        RoboRewardPromptModel(
            FakeVLM(reply=lambda ids, p: f"ANSWER: {1 + (ids[-1] * 7) % 5}"), num_prefixes=3, query_every=query_every
        ),
    ]


@pytest.mark.parametrize("judge", [0, 1, 2], ids=["gvl", "topreward", "roboreward_prompt"])
def test_online_queries_at_the_configured_rate_and_matches_offline_prefixes(judge):
    length, every = 11, 3
    model = _judges(length, every)[judge]
    frames = frames_of(length)
    online = run_online(model, frames)
    queries = [t for t in range(length) if t % every == 0]  # 0, 3, 6, 9
    for t in range(length):
        last_query = max(q for q in queries if q <= t)
        assert online[t] == online[last_query]  # held between queries
    reference = _judges(length, every)[judge]
    for t in queries:  # at query frames: the offline value of the prefix's last frame
        prefix = SimpleNamespace(frames={c: f[: t + 1] for c, f in frames.items()}, instruction=INSTRUCTION, task_id="")
        assert online[t] == pytest.approx(float(reference.predict_episode(prefix).progress[-1]), abs=1e-6)
    calls = model.vlm.calls
    if judge == 0:  # one generation per query (none at frame 0: a single frame is the 0 % anchor)
        assert len(calls) == len(queries) - 1
    elif judge == 2:  # one generation per query, of the whole prefix
        assert [c[1][-1] for c in calls] == queries
    else:  # TOPReward: log-probs of each prefix end, cached within the session
        ends = {int(e) for t in queries for e in evenly_spaced(t + 1, 4)}
        assert len(calls) == len(ends)


def test_online_batch_sessions_and_single_step_api():
    length = 7
    model = RoboRewardPromptModel(FakeVLM(reply=lambda ids, p: f"ANSWER: {1 + ids[-1] % 5}"), query_every=2)
    a, b = model.start(INSTRUCTION), model.start("another task")
    frames = frames_of(length)
    for t in range(length):
        batch = np.stack([np.stack([frames[c][t] for c in CAMERAS]), np.stack([frames[c][t] for c in CAMERAS])])
        values = model.step_batch([a, b], model.encode_frames(batch), np.zeros((2, STATE_DIM), np.float32))
        assert values.shape == (2,) and values.dtype == np.float32 and values[0] == values[1]
        assert a.last["queried"] == (t % 2 == 0) and a.last["query_frame"] == t - t % 2 and a.last["primitive"] is None
    assert len(a.embeddings) == length and a.embeddings[0].shape == (8, 8, 3)  # only the judged camera is kept
    assert any(INSTRUCTION in c[2] for c in model.vlm.calls) and any("another task" in c[2] for c in model.vlm.calls)
    model.reset(INSTRUCTION)
    value = model.step({c: frames[c][0] for c in CAMERAS}, np.zeros(STATE_DIM, np.float32))
    assert value == pytest.approx(0.0)
    with pytest.raises(InputShapeError, match="raw frames"):
        model.step_batch([a], np.zeros((1, 3, 16), np.float32), np.zeros((1, STATE_DIM), np.float32))


def test_task_ids_resolve_to_instructions():
    import tasks  # noqa: F401  (registers the env ids)

    instruction = task_instruction("SARM2/FoldShorts-v0")
    assert instruction != "SARM2/FoldShorts-v0" and len(instruction) > 5
    assert task_instruction("wipe the board") == "wipe the board"
    assert task_instruction("Unknown/Task-v0") == "Unknown/Task-v0"
    assert task_instruction("my-task-v1", {"my-task-v1": "do it"}) == "do it"
    fake = FakeVLM(reply=lambda ids, p: "ANSWER: 3")
    model = RoboRewardPromptModel(fake, query_every=5)
    run_online(model, frames_of(2), task="SARM2/FoldShorts-v0")
    assert instruction in fake.calls[0][2]
    run_online(model, frames_of(2), task="Unregistered/Task-v0", info={"task": "stack the cups"})
    assert "stack the cups" in fake.calls[-1][2]


# --- construction and labels -------------------------------------------------------------------------------
def test_registry_config_and_labels(tmp_path):
    vlm = {"kind": "http", "base_url": "http://127.0.0.1:9", "model": "Qwen2.5-VL-3B-Instruct"}
    model = make_reward_model("gvl", vlm=vlm, num_frames=8)
    assert isinstance(model, GVLRewardModel) and model.label == "GVL (Qwen2.5-VL-3B-Instruct, http)"
    assert model.config.num_frames == 8 and model.trainable is False and model.encoder_spec is None
    assert model.covers("anything")
    assert make_reward_model("topreward", vlm=vlm).label == "TOPReward (Qwen2.5-VL-3B-Instruct, http)"
    assert make_reward_model("roboreward_prompt", vlm=vlm).label.startswith("RoboReward-style prompt (")
    raw = np.zeros((2, 3, 4, 4, 3), np.uint8)
    assert model.encode_frames(raw) is not None and model.encode_frames(raw).shape == raw.shape
    with pytest.raises(WeightsNotFoundError, match="path"):
        make_reward_model("gvl", vlm={"kind": "local", "path": str(tmp_path / "missing")})
    with pytest.raises(WeightsNotFoundError, match="config.json"):
        LocalVLM(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="Qwen2.5-VL"):
        LocalVLM(None)
    with pytest.raises(ConfigError, match="needs a VLM"):
        make_reward_model("topreward")
    with pytest.raises(ConfigError, match="unknown options"):
        make_reward_model("gvl", vlm=vlm, num_prefixes=3)
    with pytest.raises(ConfigError, match="num_frames"):
        make_reward_model("gvl", vlm=vlm, num_frames=1)
    with pytest.raises(ConfigError, match="camera"):
        make_reward_model("topreward", vlm=vlm, camera="front")
    with pytest.raises(ConfigError, match="kind"):
        make_vlm({"kind": "grpc"})
    with pytest.raises(ConfigError, match="unknown keys"):
        make_vlm({"kind": "http", "base_url": "http://x", "model": "m", "temperature": 1})
    with pytest.raises(ConfigError, match="checkpoint"):
        make_reward_model("gvl", checkpoint=str(tmp_path), vlm=vlm)


# --- HTTP backend ------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802  (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, payload = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
        if status == "sleep":
            time.sleep(payload)
            status, payload = 200, {}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.answers = [], []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def chat(content: str, logprobs=None) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": content,
                    "logprob": logprobs[0][1],
                    "top_logprobs": [{"token": t, "logprob": v} for t, v in logprobs],
                }
            ]
        }
    return {"id": "x", "object": "chat.completion", "choices": [choice]}


def test_http_generate_sends_images_as_png_data_urls(server):
    import base64

    import imageio.v3 as iio

    server.answers = [(200, chat("Frame 1: 50%"))]
    vlm = HTTPVLM(server.url, "served-model", api_key="sk-test", retries=0)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)]
    assert vlm.generate(images, f"first {IMAGE} then {IMAGE} end", max_new_tokens=33) == "Frame 1: 50%"
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "served-model" and body["max_tokens"] == 33 and body["temperature"] == 0
    assert "logprobs" not in body
    (message,) = body["messages"]
    assert message["role"] == "user"
    kinds = [part["type"] for part in message["content"]]
    assert kinds == ["text", "image_url", "text", "image_url", "text"]
    urls = [part["image_url"]["url"] for part in message["content"] if part["type"] == "image_url"]
    for url, image in zip(urls, images):
        assert url.startswith("data:image/png;base64,")
        np.testing.assert_array_equal(iio.imread(base64.b64decode(url.split(",", 1)[1])), image)  # lossless PNG
    assert encode_png(images[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_http_logprobs_request_and_candidate_matching(server):
    top = [("True", -0.25), (" False", -1.75), ("ĠFalse", -2.5), ("Tr", -4.0), ("Yes", -6.0)]
    server.answers = [(200, chat("True", top))]
    vlm = HTTPVLM(server.url + "/v1/", "m", retries=0)
    scores = vlm.next_token_logprobs(
        [np.zeros((4, 4, 3), np.uint8)], "Done? True or False", ["True", "False", "Trying", "No"]
    )
    assert scores == {"True": -0.25, "False": -1.75, "Trying": -4.0, "No": -6.0}  # "No" is absent: the lowest listed
    body = server.requests[0]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    assert body["messages"][0]["content"][0]["type"] == "image_url"  # no placeholder: images first


def test_http_server_without_logprobs_is_a_clear_error(server):
    server.answers = [(200, chat("True"))]
    with pytest.raises(VLMReplyError, match="logprobs"):
        HTTPVLM(server.url, "m", retries=2, backoff=0).next_token_logprobs([], "Done?", ["True", "False"])
    assert len(server.requests) == 1  # not retried: the server cannot do it


def test_http_malformed_replies_are_retried_then_an_error(server):
    server.answers = [(200, {"unexpected": 1}), (200, b"not json"), (200, {"choices": []})]
    with pytest.raises(VLMReplyError, match=r"after 3 attempts"):
        HTTPVLM(server.url, "m", retries=2, backoff=0).generate([], "hi")
    assert len(server.requests) == 3
    server.requests.clear()
    server.answers = [(503, {"error": "overloaded"}), (200, chat("ANSWER: 5"))]
    judge = make_reward_model(
        "roboreward_prompt", vlm={"kind": "http", "base_url": server.url, "model": "m", "backoff": 0}, num_prefixes=2
    )
    out = judge.predict_episode(episode_of(4))
    np.testing.assert_allclose(out.progress, 1.0)
    assert len(server.requests) == 3  # 503, then one success per prefix
    server.answers = [(400, {"error": {"message": "unknown model"}})]
    with pytest.raises(VLMReplyError, match="unknown model"):
        HTTPVLM(server.url, "m", retries=3, backoff=0).generate([], "hi")


def test_http_unreachable_server_is_a_connection_error(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(VLMConnectionError, match=f"127.0.0.1:{port}.*after 2 attempts"):
        HTTPVLM(url, "m", retries=1, backoff=0).generate([], "hi")
    server.answers = [("sleep", 0.6)]
    with pytest.raises(VLMConnectionError, match=server.url):
        HTTPVLM(server.url, "m", timeout=0.2, retries=0).generate([], "hi")


# --- a real (tiny, random-init) local VLM ------------------------------------------------------------------
_QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _tokenizer(specials: list[str], **tokens):
    """A small byte-level BPE tokenizer trained offline ("True" and "False" end up single tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300 + len(specials),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["True False Frame robot task the of"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **tokens)


def _build_qwen2_5_vl(path) -> None:
    """Hub-style Qwen2.5-VL directory (preprocessor_config.json + chat_template.json), as Qwen ships it."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
    specials += ["<|image_pad|>", "<|video_pad|>"]
    tok = _tokenizer(specials, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.save_pretrained(path)
    (path / "chat_template.json").write_text(json.dumps({"chat_template": _QWEN_TEMPLATE}))
    preprocessor = {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
        "min_pixels": 28 * 28,
        "max_pixels": 56 * 56,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    }
    (path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    ids = tok.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 32,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids("<|im_end|>")
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    model.save_pretrained(path)


def _build_idefics3(path) -> None:
    """Idefics3 (the SmolVLM architecture) saved through its processor's own save_pretrained."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>"]
    specials += ["<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tok = _tokenizer(specials, bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>")
    images = Idefics3ImageProcessorPil(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    Idefics3Processor(
        image_processor=images, tokenizer=tok, image_seq_len=1, chat_template=_IDEFICS3_TEMPLATE
    ).save_pretrained(path)
    ids = tok.convert_tokens_to_ids
    config = Idefics3Config(
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "bos_token_id": ids("<|im_start|>"),
            "eos_token_id": ids("<end_of_utterance>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 16,
        },
        image_token_id=ids("<image>"),
        scale_factor=2,
        pad_token_id=ids("<|endoftext|>"),
    )
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).save_pretrained(path)


_FAMILIES = {
    "qwen2_5_vl": ("tiny-random-Qwen2.5-VL", _build_qwen2_5_vl),
    "idefics3": ("tiny-random-Idefics3", _build_idefics3),
}


@pytest.fixture(scope="module", params=sorted(_FAMILIES))
def tiny_vlm(request, tmp_path_factory):
    """A LocalVLM over a tiny random-init VLM directory built offline (random outputs: test only)."""
    name, build = _FAMILIES[request.param]
    path = tmp_path_factory.mktemp(request.param) / name
    path.mkdir()
    build(path)
    return LocalVLM(path, device="cpu")


def test_local_vlm_runs_the_real_processor_and_model(tiny_vlm):
    assert tiny_vlm.label.startswith("tiny-random-") and tiny_vlm.label.endswith(", local")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8) for _ in range(3)]
    reply = tiny_vlm.generate(images, f"Frame 1: {IMAGE}\nFrame 2: {IMAGE}\nFrame 3: {IMAGE}\nSay something.", 6)
    assert isinstance(reply, str)
    assert (
        tiny_vlm.generate(images, f"Frame 1: {IMAGE}\nFrame 2: {IMAGE}\nFrame 3: {IMAGE}\nSay something.", 6) == reply
    )
    scores = tiny_vlm.next_token_logprobs(images, "Done? True or False", ["True", "False", "Trueness"])
    assert set(scores) == {"True", "False", "Trueness"}
    assert all(isinstance(v, float) and np.isfinite(v) and v <= 0 for v in scores.values())
    encode = tiny_vlm.tokenizer.encode
    assert len(encode("Trueness", add_special_tokens=False)) > 1  # a multi-token candidate: scored by its first token
    assert encode("Trueness", add_special_tokens=False)[0] == encode("True", add_special_tokens=False)[0]
    assert scores["Trueness"] == scores["True"]
    assert sum(np.exp(list(scores.values())[:2])) < 1 + 1e-6  # log-probs over the full vocabulary
    no_images = tiny_vlm.next_token_logprobs([], "Is the sky blue? True or False", ["True", "False"])
    assert all(np.isfinite(v) for v in no_images.values())
    with pytest.raises(InputShapeError):
        tiny_vlm.generate([np.zeros((4, 4), np.uint8)], "x", 2)


def test_judges_over_the_tiny_local_vlm(tiny_vlm):
    length = 6
    top = TOPRewardModel(tiny_vlm, num_prefixes=3, max_images=2, query_every=3)
    assert top.label.startswith("TOPReward (tiny-random-")
    out = top.predict_episode(episode_of(length))
    assert out.progress.shape == (length,) and np.isfinite(out.progress).all()
    assert out.progress.min() >= 0 and out.progress.max() <= 1 and out.normalization == "per-episode-minmax"
    assert np.isfinite(out.extras["raw_logprob"]).all() and (out.extras["raw_logprob"] <= 0).all()
    online = run_online(top, frames_of(4))
    assert online.shape == (4,) and np.isfinite(online).all()
    # a random model cannot answer GVL's format: an error after the retries, never silent zeros
    gvl = GVLRewardModel(tiny_vlm, num_frames=3, max_new_tokens=4, max_retries=1)
    with pytest.raises(VLMReplyError, match="after 2 attempts"):
        gvl.predict_episode(episode_of(length))
    assert gvl.num_vlm_calls == 2 and isinstance(gvl.last_reply, str)


def test_judge_drives_the_reward_wrapper_on_a_sim_env(cached_env):
    from sarm2_env import SARM2RewardWrapper

    env = cached_env("SARM2/FoldShorts-v0", 32)
    fake = FakeVLM(reply=lambda ids, prompt: "ANSWER: 3")
    model = RoboRewardPromptModel(fake, num_prefixes=2, query_every=2)
    wrapped = SARM2RewardWrapper(env, reward_model=model)
    obs, info = wrapped.reset(seed=0)
    assert info["sarm2/progress"] == pytest.approx(0.5) and len(fake.calls) == 1
    for _ in range(3):
        obs, reward, terminated, truncated, info = wrapped.step(obs["agent_pos"])  # hold still
    assert len(fake.calls) == 2  # frames 0 and 2 of 0..3
    assert info["sarm2/progress"] == pytest.approx(0.5) and np.isfinite(reward)
    instruction = task_instruction("SARM2/FoldShorts-v0")
    assert all(instruction in prompt for _, _, prompt in fake.calls)
