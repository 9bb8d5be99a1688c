// buddyrec status page: what a script adds to a page that works without
// one. A click on a camera's timeline opens its view at the time under the
// pointer, on the axis the server drew (the table's data-from-ms and
// data-to-ms: linear over the timeline's width), not the browser's clock;
// the timeline range chosen is remembered for the next visit.
(function () {
  "use strict";
  const table = document.querySelector("table.cameras");
  if (!table) return;
  const from = Number(table.dataset.fromMs), to = Number(table.dataset.toMs);

  // Range: the query parameter is the truth (the page's refresh keeps it);
  // a visit to the bare page goes to the range chosen last.
  const key = "buddyrec.range";
  const params = new URLSearchParams(location.search);
  try {
    if (params.has("range")) {
      localStorage.setItem(key, params.get("range"));
    } else {
      const saved = localStorage.getItem(key);
      if (saved && saved !== table.dataset.range && document.querySelector('nav.zoom a[data-range="' + CSS.escape(saved) + '"]')) {
        params.set("range", saved);
        location.replace("?" + params.toString() + location.hash);
        return;
      }
    }
  } catch (e) { /* storage disabled: the links still work */ }

  // timeAt is the time at clientX on a timeline.
  function timeAt(svg, clientX) {
    const r = svg.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return new Date(from + f * (to - from));
  }
  function rfc3339(t) { return t.toISOString().replace(/\.\d{3}Z$/, "Z"); }

  document.addEventListener("click", (ev) => {
    const svg = ev.target.closest && ev.target.closest("svg.timeline[data-view]");
    if (!svg || ev.button !== 0) return;
    ev.preventDefault();
    const u = svg.dataset.view + "&at=" + rfc3339(timeAt(svg, ev.clientX));
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey) window.open(u, "_blank");
    else location.assign(u);
  });

  // the time under the pointer, so a click lands where it means to
  const hover = document.createElement("div");
  hover.id = "tl-hover";
  hover.hidden = true;
  document.body.appendChild(hover);
  document.addEventListener("mousemove", (ev) => {
    const svg = ev.target.closest && ev.target.closest("svg.timeline[data-view]");
    if (!svg) { hover.hidden = true; return; }
    const t = timeAt(svg, ev.clientX);
    hover.textContent = (to - from > 864e5 ? t.toLocaleDateString() + " " : "") + t.toLocaleTimeString();
    hover.style.left = (ev.clientX + 10) + "px";
    hover.style.top = (ev.clientY - 22) + "px";
    hover.hidden = false;
  });
})();
