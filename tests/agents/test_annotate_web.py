"""Tests of the rollout annotation web page (agents/annotate.py + agents/annotate_static).

The HTTP API is tested with urllib; the page end to end in headless Chromium driven by Selenium through the
Debian ``chromium`` + ``chromium-driver`` packages (``tests/run.sh`` installs them; no browser is downloaded).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from agents import annotate
from agents.annotation import AnnotatedSegment, AnnotationStore, RolloutAnnotation, synthesize_progress

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
)
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

_MISSING = [
    name
    for name, ok in (
        ("chromium (apt install chromium)", CHROMIUM),
        ("chromedriver (apt install chromium-driver)", CHROMEDRIVER),
        ("selenium (pip install selenium)", HAVE_SELENIUM),
    )
    if not ok
]
#: Set (to 1) where a missing browser is a failure, not a skip: CI (``.ci/run``) sets it.
REQUIRE_BROWSER = os.environ.get("SARM2_REQUIRE_BROWSER", "") == "1"


def require_browser() -> None:
    """Skip the browser tests when the browser is missing, or fail them when ``SARM2_REQUIRE_BROWSER=1``."""
    if not _MISSING:
        return
    message = f"browser test needs {', '.join(_MISSING)}; tests/run.sh installs them"
    if REQUIRE_BROWSER:
        pytest.fail(f"{message} (SARM2_REQUIRE_BROWSER=1: the browser is required here)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def server(rollout_dataset, tmp_path):
    srv = annotate.make_server(rollout_dataset, tmp_path / "labels.jsonl", port=0).start()
    yield srv
    srv.stop()


def page_token(srv) -> str:
    """The write token as the page carries it (read from the served HTML, as the page's script does)."""
    with urllib.request.urlopen(srv.url, timeout=10) as resp:
        html = resp.read().decode()
    match = re.search(r'<meta name="sarm2-annotate-token" content="([^"]+)">', html)
    assert match, "the page carries no write token"
    return match.group(1)


def request(srv, path: str, body=None, raw: bytes | None = None):
    """(status, parsed JSON or bytes) of a GET, or of a POST made as the page makes it (``body``/``raw`` given)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(srv.url.rstrip("/") + path, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
        req.add_header(annotate.TOKEN_HEADER, page_token(srv))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, ctype, payload = resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        status, ctype, payload = exc.code, exc.headers.get("Content-Type", ""), exc.read()
    return status, json.loads(payload) if ctype.startswith("application/json") else payload


SAVE = {
    "final_progress": 0.8,
    "segments": [{"start": 0, "end": 5, "label": "fast"}, {"start": 8, "end": 12, "label": "mistake"}],
    "catastrophic_frame": None,
    "annotator": "tester",
    "notes": "",
}


# --------------------------------------------------------------------------------------------------- HTTP API


class TestAPI:
    def test_listens_on_localhost_only(self, server):
        assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")

    def test_state_lists_episodes_and_first_pending(self, server):
        status, state = request(server, "/api/state")
        assert status == 200
        assert [e["episode_id"] for e in state["episodes"]] == ["ep0", "ep1", "ep2"]
        assert state["first_pending"] == "ep0" and state["annotated"] == 0 and state["total"] == 3
        assert state["labels"] == ["fast", "slow", "adjust", "mistake"] and state["errors"] == []

    def test_page_and_static_files(self, server):
        status, page = request(server, "/")
        assert status == 200 and b'<canvas id="curve"' in page and b"/static/app.js" in page
        for name in ("app.js", "style.css"):
            assert request(server, f"/static/{name}")[0] == 200
        for bad in ("/static/../annotation.py", "/static/%2e%2e/annotation.py", "/static/nope.js", "/etc/passwd"):
            status, payload = request(server, bad)
            assert status == 404 and "error" in payload

    def test_episode_and_frames(self, server):
        status, info = request(server, "/api/episode/ep1")
        assert status == 200
        assert info["length"] == 20 and info["fps"] == 10.0 and info["image_size"] == [32, 32]
        assert info["annotation"] is None and info["cameras"] == ["top", "left_wrist", "right_wrist"]
        import imageio.v3 as iio

        status, jpeg = request(server, "/api/frame/ep1/left_wrist/19.jpg")
        assert status == 200 and iio.imread(io.BytesIO(jpeg)).shape == (32, 32, 3)
        assert request(server, "/api/frame/ep1/left_wrist/20.jpg")[0] == 404
        assert request(server, "/api/frame/ep1/belly/0.jpg")[0] == 404

    def test_missing_episode_is_404_with_message(self, server):
        status, payload = request(server, "/api/episode/nope")
        assert status == 404 and "episode 'nope' is not in the dataset" in payload["error"]
        status, payload = request(server, "/api/annotation/nope", SAVE)
        assert status == 404 and "'nope'" in payload["error"]

    def test_save_verifies_curve_and_upserts(self, server):
        ann = RolloutAnnotation(
            "ep1", 20, 0.8, (AnnotatedSegment(0, 5, "fast"), AnnotatedSegment(8, 12, "mistake")), annotator="tester"
        )
        curve = synthesize_progress(ann).astype(float).tolist()
        status, res = request(server, "/api/annotation/ep1", SAVE | {"curve": curve})
        assert status == 200 and res["ok"] and res["verified"] is True and res["max_abs_diff"] < 1e-6
        assert res["first_pending"] == "ep0" and res["annotated"] == 1
        np.testing.assert_allclose(res["curve"], curve, atol=1e-7)
        stored = AnnotationStore(server.store.path).load()["ep1"]
        assert stored.segments == ann.segments and stored.final_progress == 0.8 and stored.length == 20
        # a wrong page curve is still saved (the labels are the truth) but reported
        status, res = request(server, "/api/annotation/ep1", SAVE | {"curve": [0.0] * 20})
        assert status == 200 and res["verified"] is False and res["max_diff_frame"] == 19
        status, info = request(server, "/api/episode/ep1")
        assert info["annotation"]["segments"][0] == {"start": 0, "end": 5, "label": "fast"}
        assert info["annotation"]["created"] == stored.created

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (
                SAVE | {"segments": [{"start": 0, "end": 5, "label": "fast"}, {"start": 3, "end": 9, "label": "slow"}]},
                "`segments` must not overlap",
            ),
            (SAVE | {"final_progress": None}, "`final_progress` must be a number in [0, 1]; got None"),
            (SAVE | {"segments": [{"start": 0, "end": 25, "label": "fast"}]}, "`segments[0].end` must be <= length"),
            (SAVE | {"catastrophic_frame": 20}, "`catastrophic_frame` must be None or an int in [0, length)"),
            (SAVE | {"colour": 1}, "got unknown ['colour']"),
            ([1, 2], "the request body must be a JSON object"),
        ],
    )
    def test_bad_saves_are_400_and_write_nothing(self, server, body, message):
        status, payload = request(server, "/api/annotation/ep0", body)
        assert status == 400 and message in payload["error"]
        assert not server.store.path.exists()

    def test_bad_json_body(self, server):
        status, payload = request(server, "/api/annotation/ep0", raw=b'{"final_progress": NaN}')
        assert status == 400 and "must be JSON" in payload["error"]

    def test_corrupted_label_file_reported_and_kept(self, server):
        path = server.store.path
        bad = '{"format": "sarm2-rollout-annotation", "version": 1, "episode_id": "ep2"'
        path.write_text(bad + "\n")
        status, state = request(server, "/api/state")
        assert any("line 1" in e and "not valid JSON" in e for e in state["errors"])
        status, res = request(server, "/api/annotation/ep0", SAVE)
        assert status == 200 and any("line 1" in e for e in res["errors"])
        assert path.read_text().splitlines()[0] == bad

    def test_stale_annotation_is_reported(self, server):
        AnnotationStore(server.store.path).upsert(RolloutAnnotation("ep2", 7, 0.5, annotator="x"))
        status, state = request(server, "/api/state")
        assert any("'ep2'" in e and "length 7" in e for e in state["errors"])
        assert [e["annotated"] for e in state["episodes"]] == [False, False, False]
        status, info = request(server, "/api/episode/ep2")
        assert info["annotation"] is None and "length 7" in info["problem"]

    def test_corrupt_episode_file_is_an_error_not_a_crash(self, server, rollout_dataset):
        (rollout_dataset / "episodes" / "ep2.npz").write_bytes(b"not a zip")
        status, payload = request(server, "/api/episode/ep2")
        assert status == 422 and "cannot load episode 'ep2'" in payload["error"]

    def test_cli_serves_until_interrupted(self, rollout_dataset, tmp_path):
        root = Path(annotate.__file__).resolve().parents[1]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
        labels = tmp_path / "cli.jsonl"
        cmd = [sys.executable, "-m", "agents.annotate", "--data", str(rollout_dataset), "--labels", str(labels)]
        proc = subprocess.Popen(
            [*cmd, "--port", "0"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C must reach the server even when the suite itself runs with SIGINT ignored (nohup, `&`).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            lines = [proc.stdout.readline(), proc.stdout.readline()]
            assert "annotating 3 episodes" in lines[0] and "(0 done)" in lines[0], lines
            url = lines[1].split()[1]
            assert url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(url + "api/state", timeout=10) as resp:
                assert json.loads(resp.read())["first_pending"] == "ep0"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_cli_errors(self, tmp_path, capsys):
        with pytest.raises(SystemExit) as info:
            annotate.main(["--data", str(tmp_path / "none"), "--labels", str(tmp_path / "l.jsonl")])
        assert info.value.code == 2 and "--data" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ write protection


def raw_request(srv, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict]:
    """(status, JSON payload) of a request with exactly ``headers`` (plus Content-Length on a POST)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if method == "POST" and "Content-Length" not in headers:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body and "Content-Length" not in headers:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


class TestWriteProtection:
    """Only the page itself may write labels: cross-site requests and DNS rebinding change nothing on disk."""

    BODY = json.dumps(SAVE | {"final_progress": 0.99}).encode()

    @pytest.fixture
    def labels_before(self, server):
        # a first, legitimate save so the file exists and has content to keep
        assert request(server, "/api/annotation/ep0", SAVE)[0] == 200
        before = server.store.path.read_bytes()
        yield before
        assert server.store.path.read_bytes() == before, "a refused request changed the labels file"

    def headers(self, server, **extra: str) -> dict[str, str]:
        port = server.server_address[1]
        good = {
            "Host": f"127.0.0.1:{port}",
            "Content-Type": "application/json",
            annotate.TOKEN_HEADER: page_token(server),
            "Origin": f"http://127.0.0.1:{port}",
        }
        for key, value in extra.items():
            name = {
                "token": annotate.TOKEN_HEADER,
                "content_type": "Content-Type",
                "content_length": "Content-Length",
            }.get(key, key.title())
            if value is None:
                good.pop(name)
            else:
                good[name] = value
        return good

    def test_page_write_with_all_proofs_is_accepted(self, server, labels_before):
        status, res = raw_request(server, "POST", "/api/annotation/ep1", self.headers(server), self.BODY)
        assert status == 200 and res["ok"]
        server.store.path.write_bytes(labels_before)  # restore so the fixture's check holds

    @pytest.mark.parametrize("host", ["localhost", "[::1]"])
    def test_every_loopback_name_is_its_own(self, server, host):
        port = server.server_address[1]
        headers = self.headers(server, host=f"{host}:{port}", origin=f"http://{host}:{port}")
        status, _ = raw_request(server, "POST", "/api/annotation/ep1", headers, self.BODY)
        assert status == 200
        status, _ = raw_request(server, "GET", "/api/state", {"Host": f"{host}:{port}"})
        assert status == 200

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"origin": "http://evil.example"}, "Origin must be the page's own"),
            ({"origin": "http://127.0.0.1:1"}, "Origin must be the page's own"),
            ({"origin": "null"}, "Origin must be the page's own"),
            ({"token": None}, "missing or wrong X-Annotate-Token"),
            ({"token": "guess"}, "missing or wrong X-Annotate-Token"),
            ({"token": ""}, "missing or wrong X-Annotate-Token"),
            ({"content_type": "text/plain"}, "Content-Type must be application/json"),
            ({"content_type": None}, "Content-Type must be application/json"),
            ({"content_type": "application/x-www-form-urlencoded"}, "Content-Type must be application/json"),
            ({"host": "evil.example:8765"}, "Host must be one of"),
            ({"host": "127.0.0.1"}, "Host must be one of"),
            ({"host": None}, "Host must be one of"),
        ],
    )
    def test_foreign_writes_are_refused_and_change_nothing(self, server, labels_before, change, message):
        status, res = raw_request(server, "POST", "/api/annotation/ep0", self.headers(server, **change), self.BODY)
        assert status == 403 and message in res["error"], res
        assert res["error"].count("\n") == 0

    def test_the_issue_s_simple_cross_site_post_is_refused(self, server, labels_before):
        port = server.server_address[1]
        headers = {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example", "Content-Type": "text/plain"}
        assert raw_request(server, "POST", "/api/annotation/ep0", headers, self.BODY)[0] == 403

    def test_oversized_body_is_refused_unread(self, server, labels_before):
        headers = self.headers(server, content_length=str(annotate.MAX_BODY + 1))
        status, res = raw_request(server, "POST", "/api/annotation/ep0", headers)
        assert status == 413 and "Content-Length" in res["error"]

    @pytest.mark.parametrize("path", ["/api/state", "/", "/api/episode/ep0", "/api/frame/ep0/top/0.jpg"])
    def test_rebinding_reads_are_refused(self, server, path):
        status, res = raw_request(server, "GET", path, {"Host": f"evil.example:{server.server_address[1]}"})
        assert status == 403 and "Host must be one of" in res["error"]

    def test_token_is_fresh_per_launch_and_kept_out_of_disk_and_logs(self, rollout_dataset, tmp_path, caplog):
        caplog.set_level("DEBUG", logger="agents.annotate")
        labels = tmp_path / "labels.jsonl"
        with annotate.make_server(rollout_dataset, labels, port=0).start() as a:
            token_a = page_token(a)
            assert request(a, "/api/annotation/ep0", SAVE)[0] == 200
        with annotate.make_server(rollout_dataset, labels, port=0).start() as b:
            token_b = page_token(b)
        assert len(token_a) >= 32 and token_a != token_b
        assert token_a not in labels.read_text() and token_a not in caplog.text


# --------------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def open_page(driver, url: str) -> None:
    """Load the page (dropping any unsaved-changes prompt of the previous one) and wait until it settled."""
    try:
        driver.execute_script("if (window.annotator) window.annotator.state.warnOnLeave = false;")
    except Exception:  # noqa: BLE001 - about:blank or a closed page
        pass
    driver.get(url)
    driver.execute_async_script("const done = arguments[0]; window.annotator.ready.then(() => done(true));")


def keys(driver, *sequence) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("document.activeElement && document.activeElement.blur();")
    chain = ActionChains(driver)
    for k in sequence:
        chain.send_keys(k)
    chain.perform()


def text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def wait_for(predicate, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


class TestBrowser:
    def test_label_save_and_resume(self, browser, server):
        from selenium.webdriver.common.keys import Keys

        d = browser
        open_page(d, server.url)
        # resumes at the first unannotated rollout and shows its three cameras
        assert text(d, "episode-title") == "ep0"
        assert wait_for(lambda: js(d, "return document.getElementById('cam-right_wrist').naturalWidth")) == 32
        # segments with clicks (mark in, label button) and keys
        d.find_element("id", "mark-in").click()  # range starts at frame 0
        keys(d, Keys.ARROW_RIGHT * 4)
        d.find_element("css selector", "button.label.fast").click()  # [0, 4) fast; the next range starts at 4
        keys(d, Keys.ARROW_RIGHT * 3, "3")  # [4, 7) adjust
        keys(d, Keys.ARROW_RIGHT * 2, "m")  # [7, 9) mistake
        keys(d, Keys.END, "2")  # [9, 20) slow (the last frame closes the rollout)
        assert js(d, "return window.annotator.state.draft.segments") == [
            {"start": 0, "end": 4, "label": "fast"},
            {"start": 4, "end": 7, "label": "adjust"},
            {"start": 7, "end": 9, "label": "mistake"},
            {"start": 9, "end": 20, "label": "slow"},
        ]
        assert len(d.find_elements("css selector", "#segments tbody tr")) == 4
        # an overlapping range is refused with a visible message
        keys(d, "i", Keys.ARROW_LEFT * 5, "f")
        assert "overlaps segment [9, 20) slow" in text(d, "message")
        assert "error" in d.find_element("id", "message").get_attribute("class")
        keys(d, Keys.ESCAPE)
        # saving without a final progress is refused on the page
        d.find_element("id", "save").click()
        assert "set the final progress" in text(d, "message")
        fp = d.find_element("id", "final-progress")
        fp.send_keys("0.9")
        d.find_element("id", "annotator").send_keys("alice")
        # catastrophe at frame 15 with the x key; the live curve drops to 0 there
        keys(d, Keys.HOME, Keys.ARROW_RIGHT * 15, "x")
        live = js(d, "return window.annotator.curve()")
        assert live[15:] == [0] * 5 and live[14] == pytest.approx(0.9)
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(d).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()  # ctrl+s saves
        assert wait_for(lambda: "saved ep0" in text(d, "message")), text(d, "message")
        assert "curve verified by the server" in text(d, "message")
        saved = AnnotationStore(server.store.path).load()["ep0"]
        assert saved.final_progress == 0.9 and saved.catastrophic_frame == 15 and saved.annotator == "alice"
        assert [(s.start, s.end, s.label) for s in saved.segments] == [
            (0, 4, "fast"),
            (4, 7, "adjust"),
            (7, 9, "mistake"),
            (9, 20, "slow"),
        ]
        np.testing.assert_allclose(live, synthesize_progress(saved), atol=1e-6)
        # fast 2, fast 2, ..: cum at 14 = 2*4 + 0*3 - 2 + 5 = 11 -> p_t = 0.9 * cum_t / 11
        assert synthesize_progress(saved)[4] == pytest.approx(0.9 * 8 / 11, abs=1e-6)
        assert "✓ done" in d.find_element("css selector", "#episodes li[data-id='ep0']").text

        # reopening resumes at the next unannotated rollout; the saved labels load when ep0 is opened
        open_page(d, server.url)
        assert text(d, "episode-title") == "ep1"
        d.find_element("css selector", "#episodes li[data-id='ep0']").click()
        assert wait_for(lambda: text(d, "episode-title") == "ep0")
        assert len(d.find_elements("css selector", "#segments tbody tr")) == 4
        assert d.find_element("id", "final-progress").get_attribute("value") == "0.9"
        assert text(d, "catastrophe") == "15"
        np.testing.assert_allclose(js(d, "return window.annotator.curve()"), synthesize_progress(saved), atol=1e-6)

    def test_play_pause_and_scrubber(self, browser, server):
        d = browser
        open_page(d, server.url + "#ep2")
        assert text(d, "episode-title") == "ep2"
        # Play at 1 fps: the pause click lands long before the 20-frame episode could end on its own (at 10 fps
        # a stalled CI machine could miss the 2 s window, and the click would restart playback instead).
        js(d, "window.annotator.state.episode.fps = 1;")
        d.find_element("id", "play").click()
        assert wait_for(lambda: js(d, "return window.annotator.state.frame") >= 1, timeout=10)
        assert js(d, "return window.annotator.state.playing")
        d.find_element("id", "play").click()
        frame = js(d, "return window.annotator.state.frame")
        time.sleep(0.3)
        assert js(d, "return window.annotator.state.frame") == frame and not js(
            d, "return window.annotator.state.playing"
        )
        js(d, "const s = document.getElementById('scrubber'); s.value = 12; s.dispatchEvent(new Event('input'));")
        assert text(d, "frame-label").startswith("frame 12 / 19")
        assert js(d, "return document.getElementById('cam-top').src").endswith("/api/frame/ep2/top/12.jpg")

    def test_error_messages_and_nothing_lost(self, browser, server):
        d = browser
        path = server.store.path
        bad_line = '{"format": "sarm2-rollout-annotation", "version": 1, "episode_id": "ep1", "len'
        good = RolloutAnnotation("ep2", 20, 0.4, (AnnotatedSegment(0, 10, "slow"),), annotator="bob")
        path.write_text(bad_line + "\n" + good.to_json() + "\n")
        # a missing episode in the URL: visible error, the first unannotated one opens instead
        open_page(d, server.url + "#nope")
        assert 'cannot open episode "nope"' in text(d, "message") and "not in the dataset" in text(d, "message")
        assert text(d, "episode-title") == "ep0"
        # the corrupted label file: a visible banner naming the line
        banner = d.find_element("id", "file-errors")
        assert banner.is_displayed() and "line 1" in banner.text and "kept as it is" in banner.text
        assert "✓ done" in d.find_element("css selector", "#episodes li[data-id='ep2']").text
        # overlapping segments that reach the server: its error is shown and nothing is written
        js(
            d,
            "const s = window.annotator.state; s.draft.final_progress = 0.5;"
            "s.draft.segments = [{start: 0, end: 6, label: 'fast'}, {start: 4, end: 9, label: 'slow'}];",
        )
        d.find_element("id", "annotator").send_keys("carol")
        before = path.read_bytes()
        d.find_element("id", "save").click()
        assert wait_for(lambda: "must not overlap" in text(d, "message")), text(d, "message")
        assert "ep0 not saved" in text(d, "message")
        assert path.read_bytes() == before
        # a good save keeps the bad line and the other annotation
        js(d, "window.annotator.state.draft.segments = [{start: 0, end: 6, label: 'fast'}];")
        d.find_element("id", "save-next").click()
        assert wait_for(lambda: text(d, "episode-title") == "ep1")  # save & next -> next unannotated
        lines = path.read_text().splitlines()
        assert lines[0] == bad_line and json.loads(lines[1])["episode_id"] == "ep2"
        assert json.loads(lines[2])["segments"] == [{"start": 0, "end": 6, "label": "fast"}]


def test_static_files_ship_with_the_package():
    static = Path(annotate.__file__).with_name("annotate_static")
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in static.iterdir()}


def test_a_missing_browser_fails_where_it_is_required(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "_MISSING", ["chromium (apt install chromium)"])
    monkeypatch.setattr(sys.modules[__name__], "REQUIRE_BROWSER", True)
    with pytest.raises(pytest.fail.Exception, match="SARM2_REQUIRE_BROWSER=1"):
        require_browser()
    monkeypatch.setattr(sys.modules[__name__], "REQUIRE_BROWSER", False)
    with pytest.raises(pytest.skip.Exception, match="tests/run.sh installs them"):
        require_browser()
