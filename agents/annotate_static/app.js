// sarm2 rollout annotation page. Served by `python -m agents.annotate`; talks to its JSON API.
// The progress synthesis below mirrors agents/annotation.py:synthesize_progress operation for operation;
// the server recomputes it on every save and reports whether the two agree.
"use strict";

(() => {
  const WEIGHTS = { fast: 2, slow: 1, adjust: 0, mistake: -1 };
  const LABELS = ["fast", "slow", "adjust", "mistake"];
  const DEFAULT_LABEL = "slow";
  const COLORS = { fast: "#2e9d4a", slow: "#9ccc65", adjust: "#f2c14e", mistake: "#d9534f" };
  const KEY_LABELS = { 1: "fast", f: "fast", 2: "slow", s: "slow", 3: "adjust", a: "adjust", 4: "mistake", m: "mistake" };

  /**
   * Dense progress curve of an annotation (see agents/annotation.py for the rule).
   * Segments are half-open [start, end); frame t's label sets the slope from t to t + 1; uncovered frames are slow.
   */
  function synthesizeProgress(length, finalProgress, segments, catastrophicFrame) {
    const curve = new Array(length).fill(0);
    const active = catastrophicFrame === null || catastrophicFrame === undefined ? length : catastrophicFrame;
    if (active === 1) {
      curve[0] = finalProgress;
    } else if (active > 1) {
      const weights = new Array(active - 1).fill(WEIGHTS[DEFAULT_LABEL]);
      for (const seg of segments) {
        for (let t = seg.start; t < Math.min(seg.end, active - 1); t++) weights[t] = WEIGHTS[seg.label];
      }
      const cum = [0];
      for (let t = 0; t < active - 1; t++) cum.push(cum[t] + weights[t]);
      const total = cum[active - 1];
      for (let t = 0; t < active; t++) {
        curve[t] = total > 0 ? (finalProgress * cum[t]) / total : (finalProgress * t) / (active - 1);
      }
    }
    return curve.map((p) => Math.min(1, Math.max(0, p)));
  }

  const $ = (id) => document.getElementById(id);

  const state = {
    summary: null, // GET /api/state
    episode: null, // GET /api/episode/<id>
    frame: 0,
    playing: false,
    timer: null,
    markIn: null,
    markOut: null,
    draft: null, // {final_progress, segments, catastrophic_frame, notes}
    saved: null, // JSON of the draft as last saved (or loaded)
    images: {},
    warnOnLeave: true,
    lastError: null,
  };
  const drafts = new Map(); // episode_id -> {draft, saved}: unsaved work on other rollouts

  // ------------------------------------------------------------------------------------------------ helpers

  function showMessage(text, kind = "ok") {
    const el = $("message");
    el.textContent = text;
    el.className = text ? kind : "";
  }

  // The server's write token, filled into the page when it is served; every save must send it back.
  const WRITE_TOKEN = (document.querySelector('meta[name="sarm2-annotate-token"]') || {}).content || "";

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new Error(`cannot reach the annotation server (${err.message}); is it still running?`);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      throw new Error(`the server answered ${response.status} without JSON`);
    }
    if (!response.ok) throw new Error(payload && payload.error ? payload.error : `HTTP ${response.status}`);
    return payload;
  }

  function emptyDraft() {
    return { final_progress: null, segments: [], catastrophic_frame: null, notes: "" };
  }

  function draftFrom(annotation) {
    if (!annotation) return emptyDraft();
    return {
      final_progress: annotation.final_progress,
      segments: annotation.segments.map((s) => ({ start: s.start, end: s.end, label: s.label })),
      catastrophic_frame: annotation.catastrophic_frame,
      notes: annotation.notes || "",
    };
  }

  const serialize = (draft) => JSON.stringify(draft);
  const isDirty = () => state.draft !== null && serialize(state.draft) !== state.saved;
  const length = () => (state.episode ? state.episode.length : 0);

  function curve() {
    if (!state.episode || state.draft.final_progress === null) return null;
    const d = state.draft;
    return synthesizeProgress(length(), d.final_progress, d.segments, d.catastrophic_frame);
  }

  function frameUrl(id, camera, t) {
    return `/api/frame/${encodeURIComponent(id)}/${encodeURIComponent(camera)}/${t}.jpg`;
  }

  // ------------------------------------------------------------------------------------------------ episode list

  async function loadState() {
    const summary = await api("/api/state");
    state.summary = summary;
    renderList();
    renderFileErrors(summary.errors);
    return summary;
  }

  function renderFileErrors(errors) {
    const el = $("file-errors");
    el.textContent = errors && errors.length ? errors.join("\n") : "";
    el.hidden = !(errors && errors.length);
  }

  function renderList() {
    const s = state.summary;
    if (!s) return;
    $("summary").textContent = `${s.annotated} / ${s.total} annotated`;
    $("paths").textContent = `dataset: ${s.dataset}\nlabels: ${s.labels_file}`;
    const ul = $("episodes");
    ul.replaceChildren();
    const current = state.episode ? state.episode.episode_id : null;
    for (const ep of s.episodes) {
      const li = document.createElement("li");
      li.dataset.id = ep.episode_id;
      const draft = ep.episode_id === current ? isDirty() : drafts.has(ep.episode_id);
      li.className = [
        ep.annotated ? "annotated" : "",
        draft ? "draft" : "",
        ep.problem ? "problem" : "",
        ep.episode_id === current ? "current" : "",
      ].join(" ");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = ep.episode_id;
      name.title = `${ep.episode_id}: ${ep.task_id}, ${ep.length} frames, ${ep.success ? "success" : "failure"}`;
      const status = document.createElement("span");
      status.className = "status";
      status.textContent = draft ? "unsaved" : ep.problem ? "⚠ stale" : ep.annotated ? "✓ done" : "todo";
      li.append(name, status);
      li.addEventListener("click", () => openEpisode(ep.episode_id));
      ul.append(li);
    }
  }

  // ------------------------------------------------------------------------------------------------ episode

  async function openEpisode(id) {
    if (state.episode && state.episode.episode_id === id) return;
    let info;
    try {
      info = await api(`/api/episode/${encodeURIComponent(id)}`);
    } catch (err) {
      state.lastError = `cannot open episode ${JSON.stringify(id)}: ${err.message}`;
      showMessage(state.lastError, "error");
      return false;
    }
    pause();
    if (state.episode && isDirty()) {
      drafts.set(state.episode.episode_id, { draft: state.draft, saved: state.saved });
    }
    state.episode = info;
    const saved = serialize(draftFrom(info.annotation));
    const kept = drafts.get(id);
    state.saved = saved;
    state.draft = kept ? kept.draft : JSON.parse(saved);
    drafts.delete(id);
    state.markIn = null;
    state.markOut = null;
    if (!$("annotator").value && info.annotation) $("annotator").value = info.annotation.annotator;
    state.images = {};
    for (const cam of info.cameras) {
      state.images[cam] = Array.from({ length: info.length }, (_, t) => {
        const img = new Image();
        img.src = frameUrl(id, cam, t);
        return img;
      });
    }
    $("episode").hidden = false;
    $("episode-title").textContent = id;
    $("episode-meta").textContent =
      `${info.task_id} · “${info.instruction}” · ${info.length} frames at ${info.fps} fps · ` +
      `${info.success ? "success" : "failure"} (recorded)`;
    $("scrubber").max = String(info.length - 1);
    $("final-progress").value = state.draft.final_progress === null ? "" : String(state.draft.final_progress);
    $("final-progress-slider").value = String(state.draft.final_progress ?? 0);
    $("notes").value = state.draft.notes;
    history.replaceState(null, "", `#${encodeURIComponent(id)}`);
    setFrame(0);
    renderAll();
    if (info.problem) showMessage(info.problem, "warn");
    else if (kept) showMessage(`restored your unsaved changes to ${id} (revert drops them)`, "warn");
    else if (info.annotation) showMessage(`loaded the saved annotation of ${id}`, "ok");
    else showMessage(`${id} is not annotated yet`, "ok");
    return true;
  }

  function setFrame(t) {
    const n = length();
    if (!n) return;
    state.frame = Math.max(0, Math.min(n - 1, Math.round(t)));
    $("scrubber").value = String(state.frame);
    for (const cam of state.episode.cameras) {
      const img = $(`cam-${cam}`);
      if (img) img.src = state.images[cam][state.frame].src;
    }
    const secs = state.frame / state.episode.fps;
    $("frame-label").textContent = `frame ${state.frame} / ${n - 1} · ${secs.toFixed(2)} s`;
    drawTimeline();
    drawCurve();
    renderSelection();
  }

  // ------------------------------------------------------------------------------------------------ playback

  function play() {
    if (!state.episode || state.playing) return;
    if (state.frame >= length() - 1) setFrame(0);
    state.playing = true;
    const speed = parseFloat($("speed").value) || 1;
    const interval = 1000 / Math.max(0.1, state.episode.fps * speed);
    state.timer = setInterval(() => {
      if (state.frame >= length() - 1) pause();
      else setFrame(state.frame + 1);
    }, interval);
    $("play").textContent = "⏸ pause";
  }

  function pause() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
    state.playing = false;
    $("play").textContent = "▶ play";
  }

  // ------------------------------------------------------------------------------------------------ editing

  function selection() {
    if (state.markIn === null) return null;
    const b = state.markOut === null ? state.frame : state.markOut;
    return { lo: Math.min(state.markIn, b), hi: Math.max(state.markIn, b) };
  }

  function addSegment(label) {
    if (!state.episode) return;
    const sel = selection();
    if (!sel) {
      showMessage("mark the start of a range first: press i (or “mark in”), then move to its end", "error");
      return;
    }
    if (sel.lo === sel.hi) {
      showMessage(`the range is empty (frame ${sel.lo} to itself): move the scrubber away from the mark`, "error");
      return;
    }
    const n = length();
    const seg = { start: sel.lo, end: sel.hi === n - 1 ? n : sel.hi, label };
    const clash = state.draft.segments.find((s) => seg.start < s.end && s.start < seg.end);
    if (clash) {
      showMessage(
        `not added: [${seg.start}, ${seg.end}) ${label} overlaps segment [${clash.start}, ${clash.end}) ` +
          `${clash.label}; delete that segment first (× in the list) or pick another range`,
        "error",
      );
      return;
    }
    state.draft.segments.push(seg);
    state.draft.segments.sort((x, y) => x.start - y.start);
    state.markIn = sel.hi;
    state.markOut = null;
    showMessage(`added [${seg.start}, ${seg.end}) ${label}`, "ok");
    renderAll();
  }

  function removeSegment(index) {
    const [seg] = state.draft.segments.splice(index, 1);
    if (seg) showMessage(`removed [${seg.start}, ${seg.end}) ${seg.label}`, "ok");
    renderAll();
  }

  function undo() {
    const segs = state.draft ? state.draft.segments : [];
    if (!segs.length) {
      showMessage("no segment to remove", "warn");
      return;
    }
    const last = segs[segs.length - 1];
    removeSegment(segs.length - 1);
    state.markIn = last.start;
    state.markOut = null;
    renderSelection();
    drawTimeline();
  }

  function setFinalProgress(text) {
    const value = text === "" ? null : Number(text);
    if (value !== null && !(Number.isFinite(value) && value >= 0 && value <= 1)) {
      state.draft.final_progress = null;
      showMessage(`final progress must be a number in [0, 1]; got ${JSON.stringify(text)}`, "error");
    } else {
      state.draft.final_progress = value;
      if (value !== null) $("final-progress-slider").value = String(value);
    }
    renderAll();
  }

  function setCatastrophe(frame) {
    state.draft.catastrophic_frame = frame;
    showMessage(frame === null ? "catastrophe cleared" : `catastrophic failure at frame ${frame}`, "ok");
    renderAll();
  }

  function revert() {
    if (!state.episode) return;
    state.draft = JSON.parse(state.saved);
    drafts.delete(state.episode.episode_id);
    $("final-progress").value = state.draft.final_progress === null ? "" : String(state.draft.final_progress);
    $("notes").value = state.draft.notes;
    showMessage("reverted to the saved annotation", "ok");
    renderAll();
  }

  async function save({ next = false } = {}) {
    if (!state.episode) return null;
    const d = state.draft;
    const annotator = $("annotator").value.trim();
    if (d.final_progress === null) {
      showMessage("not saved: set the final progress (a number in [0, 1]) first", "error");
      return null;
    }
    if (!annotator) {
      showMessage("not saved: enter your name in “annotator” first", "error");
      return null;
    }
    try {
      localStorage.setItem("sarm2-annotator", annotator);
    } catch (err) {
      /* storage may be disabled; the name is only a convenience */
    }
    const id = state.episode.episode_id;
    const body = {
      final_progress: d.final_progress,
      segments: d.segments,
      catastrophic_frame: d.catastrophic_frame,
      annotator,
      notes: d.notes,
      curve: curve(),
    };
    let res;
    try {
      res = await api(`/api/annotation/${encodeURIComponent(id)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Annotate-Token": WRITE_TOKEN },
        body: JSON.stringify(body),
      });
    } catch (err) {
      showMessage(`${id} ${err.message.startsWith("not saved") ? "" : "not saved: "}${err.message}`, "error");
      return null;
    }
    if (state.episode && state.episode.episode_id === id) {
      state.saved = serialize(draftFrom(res.annotation));
      state.draft = JSON.parse(state.saved);
    }
    state.lastSave = res;
    try {
      await loadState();
    } catch (err) {
      /* the save went through; the list refreshes on the next action */
    }
    renderFileErrors(res.errors);
    if (res.verified === false) {
      showMessage(
        `saved ${id}, but the page's curve differs from the server's synthesize_progress by ` +
          `${res.max_abs_diff} at frame ${res.max_diff_frame}; the saved labels are what counts`,
        "warn",
      );
    } else {
      showMessage(`saved ${id} (${res.annotated} / ${res.total} annotated; curve verified by the server)`, "ok");
    }
    renderAll();
    if (next) {
      if (res.first_pending && res.first_pending !== id) await openEpisode(res.first_pending);
      else showMessage(`saved ${id}; every rollout is annotated`, "ok");
    }
    return res;
  }

  // ------------------------------------------------------------------------------------------------ rendering

  function renderAll() {
    if (!state.episode) return;
    renderSegments();
    renderSelection();
    $("catastrophe").textContent = state.draft.catastrophic_frame === null ? "none" : String(state.draft.catastrophic_frame);
    drawTimeline();
    drawCurve();
    renderList();
  }

  function renderSelection() {
    const sel = selection();
    $("selection").textContent = sel
      ? `range ${sel.lo} → ${sel.hi}${state.markOut === null ? " (to the current frame)" : ""}`
      : "no range";
  }

  function renderSegments() {
    const tbody = $("segments").querySelector("tbody");
    tbody.replaceChildren();
    state.draft.segments.forEach((seg, i) => {
      const tr = document.createElement("tr");
      tr.dataset.index = String(i);
      const start = document.createElement("td");
      start.textContent = String(seg.start);
      const end = document.createElement("td");
      end.textContent = String(seg.end);
      const labelCell = document.createElement("td");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLORS[seg.label];
      const select = document.createElement("select");
      select.className = "segment-label";
      for (const name of LABELS) {
        const opt = document.createElement("option");
        opt.value = name;
        opt.textContent = name;
        opt.selected = name === seg.label;
        select.append(opt);
      }
      select.addEventListener("change", () => {
        seg.label = select.value;
        renderAll();
      });
      labelCell.append(swatch, select);
      const del = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "delete";
      button.textContent = "×";
      button.title = "delete this segment";
      button.addEventListener("click", () => removeSegment(i));
      del.append(button);
      tr.append(start, end, labelCell, del);
      tbody.append(tr);
    });
  }

  function fitCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx, w: canvas.clientWidth, h: canvas.clientHeight };
  }

  function drawTimeline() {
    if (!state.episode) return;
    const { ctx, w, h } = fitCanvas($("timeline"));
    const n = length();
    const x = (t) => (t / n) * w;
    ctx.clearRect(0, 0, w, h);
    ctx.globalAlpha = 0.25;
    ctx.fillStyle = COLORS.slow;
    ctx.fillRect(0, 8, w, h - 16);
    ctx.globalAlpha = 1;
    for (const seg of state.draft.segments) {
      ctx.fillStyle = COLORS[seg.label];
      ctx.fillRect(x(seg.start), 8, x(seg.end) - x(seg.start), h - 16);
      ctx.fillStyle = "#fff";
      ctx.fillRect(x(seg.start), 8, 1, h - 16);
    }
    const c = state.draft.catastrophic_frame;
    if (c !== null) {
      ctx.fillStyle = "rgba(30, 0, 0, 0.55)";
      ctx.fillRect(x(c), 0, w - x(c), h);
      ctx.fillStyle = "#c00";
      ctx.fillRect(x(c) - 1, 0, 3, h);
    }
    const sel = selection();
    if (sel) {
      ctx.fillStyle = "rgba(43, 108, 176, 0.3)";
      ctx.fillRect(x(sel.lo), 0, x(sel.hi + 1) - x(sel.lo), h);
      ctx.fillStyle = "#2b6cb0";
      ctx.fillRect(x(state.markIn), 0, 2, h);
    }
    ctx.fillStyle = "#000";
    ctx.fillRect(x(state.frame + 0.5) - 1, 0, 2, h);
  }

  function drawCurve() {
    if (!state.episode) return;
    const { ctx, w, h } = fitCanvas($("curve"));
    const pad = 14;
    const n = length();
    const x = (t) => pad + (n > 1 ? (t / (n - 1)) * (w - 2 * pad) : 0);
    const y = (p) => h - pad - p * (h - 2 * pad);
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#e2e6ea";
    ctx.fillStyle = "#8a939e";
    ctx.font = "11px system-ui, sans-serif";
    for (const p of [0, 0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(pad, y(p));
      ctx.lineTo(w - pad, y(p));
      ctx.stroke();
      ctx.fillText(String(p), 1, y(p) + 4);
    }
    const points = curve();
    if (!points) {
      ctx.fillStyle = "#8a1c14";
      ctx.fillText("set the final progress to see the synthesised curve", pad + 8, h / 2);
    } else {
      ctx.strokeStyle = "#2b6cb0";
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach((p, t) => (t === 0 ? ctx.moveTo(x(t), y(p)) : ctx.lineTo(x(t), y(p))));
      ctx.stroke();
      ctx.lineWidth = 1;
      const p = points[state.frame];
      ctx.fillStyle = "#000";
      ctx.beginPath();
      ctx.arc(x(state.frame), y(p), 4, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText(`p = ${p.toFixed(3)}`, Math.min(x(state.frame) + 6, w - 60), Math.max(12, y(p) - 6));
    }
    ctx.strokeStyle = "#000";
    ctx.beginPath();
    ctx.moveTo(x(state.frame), pad);
    ctx.lineTo(x(state.frame), h - pad);
    ctx.stroke();
  }

  // ------------------------------------------------------------------------------------------------ input

  function onKey(e) {
    const target = e.target;
    const tag = target && target.tagName;
    const typing =
      tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && !["range", "button", "checkbox"].includes(target.type));
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      save();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey || !state.episode) return;
    const otherRange = tag === "INPUT" && target.type === "range" && target.id !== "scrubber";
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const step = e.shiftKey ? 10 : 1;
    const handled = {
      " ": () => (state.playing ? pause() : play()),
      ArrowRight: () => !otherRange && setFrame(state.frame + step),
      ArrowLeft: () => !otherRange && setFrame(state.frame - step),
      Home: () => !otherRange && setFrame(0),
      End: () => !otherRange && setFrame(length() - 1),
      i: () => {
        state.markIn = state.frame;
        state.markOut = null;
        renderSelection();
        drawTimeline();
      },
      o: () => {
        if (state.markIn === null) showMessage("press i at the start of the range first", "error");
        state.markOut = state.markIn === null ? null : state.frame;
        renderSelection();
        drawTimeline();
      },
      Escape: () => {
        state.markIn = null;
        state.markOut = null;
        renderSelection();
        drawTimeline();
      },
      x: () => setCatastrophe(state.frame),
      u: () => undo(),
    }[key];
    if (handled) {
      if (otherRange && key.startsWith("Arrow")) return;
      e.preventDefault();
      handled();
    } else if (KEY_LABELS[key]) {
      e.preventDefault();
      addSegment(KEY_LABELS[key]);
    }
  }

  function bind() {
    document.addEventListener("keydown", onKey);
    document.addEventListener("click", (e) => {
      const button = e.target.closest && e.target.closest("button");
      if (button) button.blur(); // keep single-key shortcuts working after a click
    });
    $("play").addEventListener("click", () => (state.playing ? pause() : play()));
    $("scrubber").addEventListener("input", (e) => setFrame(Number(e.target.value)));
    $("speed").addEventListener("change", () => {
      if (state.playing) {
        pause();
        play();
      }
    });
    $("timeline").addEventListener("click", (e) => {
      const rect = e.currentTarget.getBoundingClientRect();
      setFrame(Math.floor(((e.clientX - rect.left) / rect.width) * length()));
    });
    $("mark-in").addEventListener("click", () => onKey({ key: "i", target: document.body, preventDefault() {} }));
    $("mark-out").addEventListener("click", () => onKey({ key: "o", target: document.body, preventDefault() {} }));
    $("clear-marks").addEventListener("click", () =>
      onKey({ key: "Escape", target: document.body, preventDefault() {} }),
    );
    for (const button of document.querySelectorAll("#label-buttons button.label")) {
      button.addEventListener("click", () => addSegment(button.dataset.label));
    }
    $("undo").addEventListener("click", undo);
    $("final-progress").addEventListener("input", (e) => setFinalProgress(e.target.value.trim()));
    $("final-progress-slider").addEventListener("input", (e) => {
      $("final-progress").value = e.target.value;
      setFinalProgress(e.target.value);
    });
    $("set-catastrophe").addEventListener("click", () => setCatastrophe(state.frame));
    $("clear-catastrophe").addEventListener("click", () => setCatastrophe(null));
    $("notes").addEventListener("input", (e) => {
      state.draft.notes = e.target.value;
      renderList();
    });
    $("save").addEventListener("click", () => save());
    $("save-next").addEventListener("click", () => save({ next: true }));
    $("revert").addEventListener("click", revert);
    window.addEventListener("resize", () => {
      drawTimeline();
      drawCurve();
    });
    window.addEventListener("hashchange", () => {
      const id = decodeURIComponent(location.hash.slice(1));
      if (id) openEpisode(id);
    });
    window.addEventListener("beforeunload", (e) => {
      if (state.warnOnLeave && (isDirty() || drafts.size)) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
  }

  async function start() {
    bind();
    try {
      $("annotator").value = localStorage.getItem("sarm2-annotator") || "";
    } catch (err) {
      /* storage disabled */
    }
    let summary;
    try {
      summary = await loadState();
    } catch (err) {
      showMessage(`cannot load the dataset: ${err.message}`, "error");
      return;
    }
    if (!summary.episodes.length) {
      showMessage(`the dataset ${summary.dataset} has no episodes yet`, "warn");
      return;
    }
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted && (await openEpisode(wanted))) return;
    const first = summary.first_pending || summary.episodes[0].episode_id;
    const opened = await openEpisode(first);
    if (opened && wanted) {
      showMessage(`${state.lastError}; opened ${first} instead`, "error");
    }
    if (opened && !wanted && !summary.first_pending) showMessage("every rollout is annotated", "ok");
  }

  // Test and console hooks.
  window.annotator = {
    state,
    drafts,
    curve,
    synthesizeProgress,
    openEpisode,
    save,
    setFrame,
    addSegment,
    isDirty,
    ready: start(),
  };
})();
