// The buddyrec camera view: live fMP4 over a WebSocket into Media Source
// Extensions, or recorded footage from the site-wide export. window.viewState
// says what the page is doing (tests and troubleshooting read it).
(function () {
  "use strict";
  const cfg = window.buddyrecView;
  const cam = cfg.camera;
  const video = document.getElementById("video");
  const statusEl = document.getElementById("status");
  const state = (window.viewState = { mode: "", mime: "", codec: "", error: "", inits: 0, reconnects: 0 });

  function setStatus(s) { statusEl.textContent = s; }

  // firstFrameMs: from opening the page to the first frame composited
  // (what `bench live` reports)
  function markFirstFrame() {
    if (!state.firstFrameMs) state.firstFrameMs = performance.now();
  }
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(markFirstFrame);
  else video.addEventListener("loadeddata", markFirstFrame, { once: true });
  function q(id) { return encodeURIComponent(id); }

  // ---- live ----
  let ws = null, ms = null, sb = null, queue = [], mime = "", retry = null, closing = false;

  function stopLive() {
    closing = true;
    if (retry) { clearTimeout(retry); retry = null; }
    if (ws) { ws.close(); ws = null; }
    ms = null; sb = null; queue = []; mime = "";
  }

  function pump() {
    if (!sb || sb.updating || queue.length === 0) return;
    const b = queue.shift();
    try {
      sb.appendBuffer(b);
    } catch (e) {
      if (e.name === "QuotaExceededError") { trim(true); queue.unshift(b); return; }
      state.error = String(e); setStatus("playback error: " + e); reconnect();
    }
  }

  // trim keeps the buffer short: a live view needs seconds, not hours.
  function trim(force) {
    if (!sb || sb.updating || video.buffered.length === 0) return;
    const start = video.buffered.start(0), now = video.currentTime;
    if (now - start > (force ? 5 : 30)) {
      try { sb.remove(start, now - 3); } catch (e) { /* retried on the next tick */ }
    }
  }

  function unsupported(m) {
    state.error = "unsupported: " + m;
    document.getElementById("unsupported").hidden = false;
    video.hidden = true;
    const codec = state.codec === "h265" ? "H.265 (HEVC)" : m;
    document.getElementById("unsupported-text").textContent =
      "This browser cannot decode " + codec + " video. Download the footage as MP4 or open the RTSP stream in a player such as VLC.";
    const to = new Date(), from = new Date(to.getTime() - 600e3);
    document.getElementById("download").href = "/api/v1/export?camera=" + q(cam.id) + "&from=" + from.toISOString() + "&to=" + to.toISOString();
  }

  function onInit(info) {
    state.codec = info.codec;
    if (!window.MediaSource || !MediaSource.isTypeSupported(info.mime)) {
      unsupported(info.mime);
      stopLive();
      return false;
    }
    state.inits++;
    if (ms && sb && ms.readyState === "open") {
      if (info.mime !== mime) {
        // the camera moved or changed codec parameters: same buffer, new type
        if (sb.changeType) sb.changeType(info.mime);
        mime = info.mime;
      }
      state.mime = mime;
      return true;
    }
    mime = info.mime; state.mime = mime;
    ms = new MediaSource();
    video.src = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      sb = ms.addSourceBuffer(mime);
      sb.mode = "segments";
      sb.addEventListener("updateend", () => {
        // the first data starts at the cached keyframe, somewhere on the
        // server's timeline: start there at once rather than at zero
        const b = video.buffered;
        if (b.length > 0 && video.currentTime < b.start(0)) {
          video.currentTime = b.start(0);
          video.play().catch(() => {});
        }
        pump();
      });
      pump();
    }, { once: true });
    return true;
  }

  function reconnect() {
    if (closing) return;
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    ms = null; sb = null; queue = [];
    state.reconnects++;
    setStatus("reconnecting…");
    retry = setTimeout(startLive, 1000);
  }

  function startLive() {
    closing = false;
    state.mode = "live";
    document.getElementById("mode").textContent = "LIVE";
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/view/ws?camera=" + q(cam.id));
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const info = JSON.parse(ev.data);
        if (info.type === "init") onInit(info);
        return;
      }
      queue.push(ev.data);
      pump();
    };
    ws.onopen = () => setStatus("");
    ws.onclose = () => reconnect();
  }

  // keep a live view live: skip gaps, stay near the newest frame
  setInterval(() => {
    if (state.mode !== "live" || !sb) return;
    const b = video.buffered;
    if (b.length === 0) return;
    const end = b.end(b.length - 1);
    let inRange = false;
    for (let i = 0; i < b.length; i++) {
      if (video.currentTime >= b.start(i) && video.currentTime <= b.end(i)) inRange = true;
    }
    if (!inRange || end - video.currentTime > 3) {
      // a gap (the camera moved, or came back) or too far behind
      video.currentTime = Math.max(b.start(b.length - 1), end - 0.5);
    }
    if (video.paused) video.play().catch(() => {});
    trim(false);
  }, 500);

  // ---- recorded ----
  function playAt(t) {
    stopLive();
    state.mode = "recorded";
    document.getElementById("mode").textContent = "RECORDED " + t.toISOString();
    // not clamped to this browser's clock: t may come from the server's
    // (the status page's timeline), and a browser behind it would ask for
    // a range that ends before it starts; the export stops at the footage
    // there is
    const to = new Date(t.getTime() + 30 * 60e3);
    video.src = "/api/v1/export?camera=" + q(cam.id) + "&from=" + t.toISOString() + "&to=" + to.toISOString();
    video.play().catch(() => {});
    drawSeek(t);
  }

  // ---- seek bar over the recorded spans ----
  const seek = document.getElementById("seek");
  const zoom = document.getElementById("zoom");
  let seekFrom = 0, seekTo = 0;
  async function drawSeek(cursor) {
    const span = Number(zoom.value) * 1000;
    seekTo = Date.now(); seekFrom = seekTo - span;
    document.getElementById("seek-from").textContent = new Date(seekFrom).toLocaleString();
    document.getElementById("seek-to").textContent = "now";
    const box = document.getElementById("seek-spans");
    try {
      const r = await fetch("/api/v1/recordings?camera=" + q(cam.id) + "&from=" + new Date(seekFrom).toISOString() + "&to=" + new Date(seekTo).toISOString());
      if (!r.ok) return;
      const body = await r.json();
      box.textContent = "";
      for (const s of body.spans || []) {
        const a = Math.max(seekFrom, Date.parse(s.start)), b = Math.min(seekTo, Date.parse(s.end));
        if (b <= a) continue;
        const d = document.createElement("div");
        d.style.left = ((a - seekFrom) / span * 100) + "%";
        d.style.width = Math.max(0.1, (b - a) / span * 100) + "%";
        d.title = s.recorded_by + ": " + s.start + " – " + s.end;
        if (s.recorded_by !== cam.id.split("/")[0]) d.className = "other";
        box.appendChild(d);
      }
    } catch (e) { /* the bar stays as it was */ }
    const c = cursor ? cursor.getTime() : seekTo;
    document.getElementById("seek-cursor").style.left = ((c - seekFrom) / span * 100) + "%";
  }
  seek.addEventListener("click", (ev) => {
    const r = seek.getBoundingClientRect();
    const t = seekFrom + (ev.clientX - r.left) / r.width * (seekTo - seekFrom);
    playAt(new Date(t));
  });
  zoom.addEventListener("change", () => drawSeek());
  document.getElementById("live").addEventListener("click", () => { if (state.mode !== "live") { video.removeAttribute("src"); startLive(); drawSeek(); } });
  document.getElementById("back10").addEventListener("click", () => playAt(new Date(Date.now() - 10e3)));
  setInterval(() => { if (state.mode === "live") drawSeek(); }, 10000);

  if (cfg.at) playAt(new Date(cfg.at)); else { startLive(); drawSeek(); }
})();
