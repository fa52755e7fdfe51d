/* latentlapse report: the interactive latent-space explorer.
 *
 * Draws each frame of layouts/ on a canvas (training sample left, validation sample right, class
 * colours and markers as in the PNG frames, misclassified validation points as red X on a ring of
 * their true class's colour), glides the points along their paths (through every frame in
 * between) when the frame player changes frame, and answers hover (id, classes, probabilities),
 * click (a side panel: spectrum or features, history, region, suspect rank, path on the map),
 * filters and search. Reads only the inline JSON
 * of #explorer-data; loads nothing. The panel's charts are drawn by explorer_plots.js (`plots`),
 * placed before this in the same script. window.explorer is a small read-only hook for tests and
 * benchmarks.
 */
(function () {
  "use strict";
  var source = document.getElementById("explorer-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var ERROR_COLOR = "#d62728", NO_CLASS = 255, GLIDE_MS = 450, HIT_PX = 9;
  var classes = data.classes, nClasses = classes.length;
  var epochs = data.epochs, nFrames = epochs.length, ids = data.ids, n = ids.length;
  var split = bytes(data.split), labels = bytes(data.labels), pred = bytes(data.pred);
  var xy = new Float32Array(bytes(data.xy).buffer);
  var proba = data.proba ? bytes(data.proba) : null;
  var summary = data.summary, dynamics = data.dynamics, inputs = data.inputs;
  var suspect = new Uint8Array(n);
  if (summary) { summary.suspect.forEach(function (s, k) { suspect[k] = s ? 1 : 0; }); }

  var canvas = document.getElementById("ex-canvas");
  var ctx = canvas.getContext("2d");
  var tip = document.getElementById("ex-tip");
  var panel = document.getElementById("ex-panel");
  var count = document.getElementById("ex-count");
  var search = document.getElementById("ex-search");
  var errorsBox = document.getElementById("ex-errors");
  var suspectsBox = document.getElementById("ex-suspects");
  var shownClass = classes.map(function () { return true; });
  var frame = 0, shownFrame = 0, from = null, route = [], glideStart = 0, glideMs = GLIDE_MS, glideFrom = 0, animating = false;
  var pos = new Float32Array(n * 2), visible = new Uint8Array(n), selected = -1, hovered = -1;
  var geometry = { size: 100, pad: 16, top: 26, dpr: 1 };
  var spectra = null;

  // ------------------------------------------------------------------------------ decoding
  function bytes(text) {
    var raw = atob(text), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  function half(h) {  // IEEE 754 binary16 -> number
    var sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) { return sign * f * Math.pow(2, -24); }
    if (e === 31) { return f ? NaN : sign * Infinity; }
    return sign * (1 + f / 1024) * Math.pow(2, e - 15);
  }
  function halves(text) { return new Uint16Array(bytes(text).buffer); }
  function inputRow(k) {
    if (!inputs) { return null; }
    if (spectra === null) {
      spectra = inputs.dtype === "float16" ? halves(inputs.x) : new Float32Array(bytes(inputs.x).buffer);
    }
    var row = [], m = inputs.n;
    for (var j = 0; j < m; j++) {
      var v = spectra[k * m + j];
      row.push(inputs.dtype === "float16" ? half(v) : v);
    }
    return row;
  }
  var history = null;
  function historyOf(k) {  // [{epoch, p, margin}] from the dynamics, else from the frames' probabilities
    var out = [], e;
    if (dynamics) {
      if (history === null) { history = { p: halves(dynamics.trueProba), m: halves(dynamics.margin) }; }
      for (e = 0; e < dynamics.epochs.length; e++) {
        out.push({ epoch: dynamics.epochs[e], p: half(history.p[e * n + k]), margin: half(history.m[e * n + k]) });
      }
    } else if (proba) {
      for (e = 0; e < nFrames; e++) {
        out.push({ epoch: epochs[e], p: proba[(e * n + k) * nClasses + labels[k]] / 250, margin: NaN });
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------ geometry
  function resize() {
    var width = canvas.parentElement.clientWidth;
    var dpr = window.devicePixelRatio || 1;
    var size = Math.max(120, Math.floor((width - 3 * geometry.pad) / 2));
    geometry = { size: size, pad: geometry.pad, top: geometry.top, dpr: dpr };
    var height = size + geometry.top + geometry.pad;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    draw();
  }
  function screen(k, x, y) {  // display coordinates (-1..1) -> canvas CSS pixels
    var x0 = geometry.pad + split[k] * (geometry.size + geometry.pad), s = geometry.size;
    return [x0 + (x + 1) / 2 * s, geometry.top + (1 - y) / 2 * s];
  }
  function predicted(f, k) { return pred[f * n + k]; }
  function wrong(f, k) { var p = predicted(f, k); return p !== NO_CLASS && p !== labels[k]; }

  // ------------------------------------------------------------------------------- drawing
  function updatePositions(now) {  // positions along the route of frames being glided; returns its progress
    var t = 1, seg = 0, u = 1;
    shownFrame = frame;
    if (animating) {
      t = Math.min(1, (now - glideStart) / glideMs);
      t = t < 0.5 ? 2 * t * t : 1 - Math.pow(-2 * t + 2, 2) / 2;  // ease in and out
      var s = t * route.length;
      seg = Math.min(Math.floor(s), route.length - 1);
      u = s - seg;
      shownFrame = u < 0.5 ? (seg === 0 ? glideFrom : route[seg - 1]) : route[seg];  // colours switch half-way
    }
    var end = animating ? route[seg] : frame, start = animating && seg > 0 ? route[seg - 1] : -1;
    for (var k = 0; k < n; k++) {
      var bx = xy[(end * n + k) * 2], by = xy[(end * n + k) * 2 + 1], ax, ay;
      if (start >= 0) { ax = xy[(start * n + k) * 2]; ay = xy[(start * n + k) * 2 + 1]; }
      else { ax = from ? from[k * 2] : bx; ay = from ? from[k * 2 + 1] : by; }
      if (isNaN(ax) || isNaN(ay)) { ax = bx; ay = by; }
      pos[k * 2] = ax + (bx - ax) * u;
      pos[k * 2 + 1] = ay + (by - ay) * u;
    }
    return t;
  }
  function filterPoints() {
    var shown = 0, errors = 0;
    for (var k = 0; k < n; k++) {
      var ok = shownClass[labels[k]] && !isNaN(xy[(frame * n + k) * 2]);
      if (ok && errorsBox.checked) { ok = wrong(frame, k); }
      if (ok && suspectsBox.checked) { ok = suspect[k] === 1; }
      visible[k] = ok ? 1 : 0;
      if (ok) { shown++; if (split[k] === 1 && wrong(frame, k)) { errors++; } }
    }
    count.textContent = shown + " of " + n + " points shown \u00b7 " + errors + " validation errors among them";
    canvas.setAttribute("data-visible", String(shown));
  }
  function marker(name, x, y, r) {
    ctx.beginPath();
    var i, a;
    if (name === "s") { ctx.rect(x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7); }
    else if (name === "^" || name === "v") {
      var d = name === "^" ? 1 : -1;
      ctx.moveTo(x, y - d * r * 1.1); ctx.lineTo(x + r, y + d * r * 0.75); ctx.lineTo(x - r, y + d * r * 0.75); ctx.closePath();
    } else if (name === "D") { ctx.moveTo(x, y - r * 1.1); ctx.lineTo(x + r * 0.8, y); ctx.lineTo(x, y + r * 1.1); ctx.lineTo(x - r * 0.8, y); ctx.closePath(); }
    else if (name === "h") {
      for (i = 0; i < 6; i++) { a = Math.PI / 3 * i + Math.PI / 2; ctx.lineTo(x + r * Math.cos(a), y - r * Math.sin(a)); }
      ctx.closePath();
    } else if (name === "*") {
      for (i = 0; i < 10; i++) { a = Math.PI / 5 * i + Math.PI / 2; var q = i % 2 ? r * 0.45 : r * 1.2; ctx.lineTo(x + q * Math.cos(a), y - q * Math.sin(a)); }
      ctx.closePath();
    } else if (name === "P" || name === "X") {
      var w = r * 0.38, L = r * 1.05, pts = [[-w, -L], [w, -L], [w, -w], [L, -w], [L, w], [w, w], [w, L], [-w, L], [-w, w], [-L, w], [-L, -w], [-w, -w]];
      var c = name === "X" ? Math.SQRT1_2 : 1, s = name === "X" ? Math.SQRT1_2 : 0;
      pts.forEach(function (p) { ctx.lineTo(x + p[0] * c - p[1] * s, y + p[0] * s + p[1] * c); });
      ctx.closePath();
    } else { ctx.arc(x, y, r, 0, 2 * Math.PI); }
    ctx.fill();
    ctx.stroke();
  }
  function drawFrameBoxes() {
    ctx.font = "600 14px system-ui, sans-serif";
    ctx.textBaseline = "alphabetic";
    ["Training sample", "Validation sample"].forEach(function (title, i) {
      var x0 = geometry.pad + i * (geometry.size + geometry.pad);
      ctx.fillStyle = "#fbfbfb";
      ctx.fillRect(x0, geometry.top, geometry.size, geometry.size);
      ctx.strokeStyle = "#b0b0b0";
      ctx.lineWidth = 0.8;
      ctx.strokeRect(x0, geometry.top, geometry.size, geometry.size);
      ctx.fillStyle = "#222";
      ctx.fillText(title + " \u00b7 epoch " + epochs[frame], x0, geometry.top - 8);
    });
  }
  function drawPath(k) {
    ctx.strokeStyle = "rgba(40,40,40,0.75)";
    ctx.fillStyle = "rgba(40,40,40,0.75)";
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    var started = false;
    for (var f = 0; f < nFrames; f++) {
      var x = xy[(f * n + k) * 2], y = xy[(f * n + k) * 2 + 1];
      if (isNaN(x)) { continue; }
      var p = screen(k, x, y);
      if (started) { ctx.lineTo(p[0], p[1]); } else { ctx.moveTo(p[0], p[1]); started = true; }
    }
    ctx.stroke();
    for (f = 0; f < nFrames; f++) {
      if (isNaN(xy[(f * n + k) * 2])) { continue; }
      var q = screen(k, xy[(f * n + k) * 2], xy[(f * n + k) * 2 + 1]);
      ctx.beginPath(); ctx.arc(q[0], q[1], f === frame ? 3 : 1.8, 0, 2 * Math.PI); ctx.fill();
    }
  }
  function ring(k, color, radius) {
    var p = screen(k, pos[k * 2], pos[k * 2 + 1]);
    ctx.strokeStyle = color; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(p[0], p[1], radius, 0, 2 * Math.PI); ctx.stroke();
  }
  function draw(now) {
    var t = updatePositions(now || performance.now());
    var f = shownFrame;
    ctx.setTransform(geometry.dpr, 0, 0, geometry.dpr, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    drawFrameBoxes();
    ctx.save();
    [0, 1].forEach(function (part) {
      var x0 = geometry.pad + part * (geometry.size + geometry.pad);
      ctx.save();
      ctx.beginPath(); ctx.rect(x0, geometry.top, geometry.size, geometry.size); ctx.clip();
      var base = part === 0 ? 4 : 5;
      for (var pass = 0; pass < 2; pass++) {  // correct points, then errors on top
        for (var k = 0; k < n; k++) {
          if (split[k] !== part || !visible[k]) { continue; }
          var isError = part === 1 && wrong(f, k);
          if ((pass === 1) !== isError) { continue; }
          var p = screen(k, pos[k * 2], pos[k * 2 + 1]);
          ctx.lineWidth = isError ? 0.9 : 0.5;
          ctx.strokeStyle = "#fff";
          if (isError) {  // as in the PNG frames: a red X over a ring in the true class's colour
            ctx.globalAlpha = 1;
            ctx.strokeStyle = classes[labels[k]].color; ctx.lineWidth = 1.8;
            ctx.beginPath(); ctx.arc(p[0], p[1], base + 5, 0, 2 * Math.PI); ctx.stroke();
            ctx.strokeStyle = "#fff"; ctx.lineWidth = 0.9; ctx.fillStyle = ERROR_COLOR;
            marker("X", p[0], p[1], base + 2);
          }
          else { ctx.globalAlpha = 0.75; ctx.fillStyle = classes[labels[k]].color; marker(classes[labels[k]].marker, p[0], p[1], base); }
        }
      }
      ctx.globalAlpha = 1;
      if (selected >= 0 && split[selected] === part) { drawPath(selected); ring(selected, "#111", 9); }
      if (hovered >= 0 && split[hovered] === part && hovered !== selected) { ring(hovered, "#555", 8); }
      ctx.restore();
    });
    ctx.restore();
    if (animating && t >= 1) { animating = false; from = null; }
    if (animating) { window.requestAnimationFrame(draw); }
  }
  function goTo(epoch) {
    var target = epochs.indexOf(epoch);
    if (target < 0 || target === frame) { return; }
    updatePositions(performance.now());
    from = new Float32Array(pos);
    glideFrom = shownFrame;
    route = [];
    for (var f = frame; f !== target;) { f += target > frame ? 1 : -1; route.push(f); }  // through every frame between
    glideMs = Math.min(1500, GLIDE_MS + 150 * (route.length - 1));
    frame = target;
    glideStart = performance.now();
    animating = true;
    filterPoints();
    if (selected >= 0) { showPanel(selected); }
    window.requestAnimationFrame(draw);
  }

  // ----------------------------------------------------------------------- hover and click
  function nearest(event) {
    var box = canvas.getBoundingClientRect(), mx = event.clientX - box.left, my = event.clientY - box.top;
    var best = -1, bestD = HIT_PX * HIT_PX;
    for (var k = 0; k < n; k++) {
      if (!visible[k]) { continue; }
      var p = screen(k, pos[k * 2], pos[k * 2 + 1]), d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
      if (d <= bestD) { best = k; bestD = d; }
    }
    return best;
  }
  function probabilities(f, k) {
    if (!proba) { return null; }
    var out = [];
    for (var c = 0; c < nClasses; c++) { out.push(proba[(f * n + k) * nClasses + c] / 250); }
    return out;
  }
  function line(parent, text, cls) {
    var div = document.createElement("div");
    div.textContent = text;
    if (cls) { div.className = cls; }
    parent.appendChild(div);
    return div;
  }
  function className(c) { return c === NO_CLASS ? "not recorded" : classes[c].name; }
  function describe(parent, k) {
    var p = predicted(frame, k);
    line(parent, ids[k], "ex-id");
    line(parent, (split[k] === 0 ? "training" : "validation") + " sample \u00b7 epoch " + epochs[frame]);
    line(parent, "true class: " + classes[labels[k]].name);
    line(parent, "predicted: " + className(p) + (p !== NO_CLASS && p !== labels[k] ? " (wrong)" : ""), p !== NO_CLASS && p !== labels[k] ? "ex-wrong" : "");
    var probs = probabilities(frame, k);
    if (probs) {
      line(parent, "probabilities: " + probs.map(function (v, c) { return classes[c].name + " " + v.toFixed(2); }).join(" \u00b7 "), "ex-probs");
    }
  }
  canvas.addEventListener("mousemove", function (event) {
    var k = nearest(event);
    if (k !== hovered) { hovered = k; if (!animating) { draw(); } }
    if (k < 0) { tip.hidden = true; canvas.style.cursor = ""; return; }
    canvas.style.cursor = "pointer";
    tip.textContent = "";
    describe(tip, k);
    tip.setAttribute("data-id", ids[k]);
    var box = canvas.getBoundingClientRect(), p = screen(k, pos[k * 2], pos[k * 2 + 1]);
    tip.style.left = Math.min(p[0] + 14, box.width - 260) + "px";
    tip.style.top = (p[1] + 14) + "px";
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; hovered = -1; if (!animating) { draw(); } });
  canvas.addEventListener("click", function (event) {
    var k = nearest(event);
    select(k);
  });
  function select(k) {
    selected = k;
    if (k < 0) { panel.removeAttribute("data-id"); panel.textContent = ""; line(panel, "Click a point to see its source.", "note"); }
    else { showPanel(k); }
    if (!animating) { draw(); }
  }

  // ---------------------------------------------------------------------------- side panel
  function showPanel(k) {
    panel.textContent = "";
    panel.setAttribute("data-id", ids[k]);
    describe(panel, k);
    if (summary) {
      var rank = summary.suspectRank[k];
      line(panel, "region: " + (summary.region[k] || "not recorded"));
      line(panel, "suspect rank: " + (rank === null ? "not recorded" : rank + (suspect[k] ? " (a suspect)" : "")));
    } else {
      line(panel, "region and suspect rank: not recorded for this run", "note");
    }
    var row = inputRow(k);
    if (row && inputs.kind === "spectra") { plots.spectrum(panel, inputs.energy, row, inputs.counts[k], classes[labels[k]].color); }
    else if (row) { plots.features(panel, inputs.names, row); }
    else { line(panel, "The inputs of this run's sample were not kept (no viz_inputs.npz).", "note"); }
    plots.history(panel, historyOf(k), epochs[frame], dynamics !== null);
  }
  // ------------------------------------------------------------------ filters and search
  var chips = document.getElementById("ex-classes");
  classes.forEach(function (c, i) {
    var label = document.createElement("label"), box = document.createElement("input"), swatch = document.createElement("span");
    box.type = "checkbox"; box.checked = true; box.setAttribute("data-class", String(i));
    box.addEventListener("change", function () { shownClass[i] = box.checked; refilter(); });
    swatch.className = "ex-swatch"; swatch.style.background = c.color;
    label.appendChild(box); label.appendChild(swatch); label.appendChild(document.createTextNode(c.name));
    chips.appendChild(label);
  });
  if (!summary) { suspectsBox.disabled = true; suspectsBox.parentElement.title = "no dynamics.csv in this run"; }
  function refilter() { filterPoints(); if (!animating) { draw(); } }
  errorsBox.addEventListener("change", refilter);
  suspectsBox.addEventListener("change", refilter);
  function find(text) {
    var query = text.trim().toLowerCase(), partial = -1;
    if (!query) { return -1; }
    for (var k = 0; k < n; k++) {
      var id = ids[k].toLowerCase();
      if (id === query) { return k; }
      if (partial < 0 && id.indexOf(query) >= 0) { partial = k; }
    }
    return partial;
  }
  function runSearch() {
    var k = find(search.value);
    search.setCustomValidity(k < 0 && search.value.trim() ? "no source with that id in the sample" : "");
    search.setAttribute("data-found", k < 0 ? "" : ids[k]);
    if (k < 0) { return; }
    if (!visible[k]) {  // clear the filters that hide it
      errorsBox.checked = false; suspectsBox.checked = false; shownClass[labels[k]] = true;
      chips.querySelector('[data-class="' + labels[k] + '"]').checked = true;
      filterPoints();
    }
    select(k);
  }
  search.addEventListener("keydown", function (event) { if (event.key === "Enter") { event.preventDefault(); runSearch(); } event.stopPropagation(); });
  search.addEventListener("change", runSearch);

  document.addEventListener("latentlapse-frame", function (event) { goTo(event.detail.epoch); });
  window.addEventListener("resize", resize);
  filterPoints();
  resize();
  select(-1);

  window.explorer = Object.freeze({
    readyAt: performance.now(),
    frame: function () { return { index: frame, epoch: epochs[frame] }; },
    animating: function () { return animating; },
    position: function (id, part) {  // viewport pixel position of a point (null when hidden or absent)
      for (var k = 0; k < n; k++) {
        if (ids[k] === String(id) && (part === undefined || split[k] === part)) {
          if (!visible[k]) { return null; }
          var box = canvas.getBoundingClientRect(), p = screen(k, pos[k * 2], pos[k * 2 + 1]);
          return { x: box.left + p[0], y: box.top + p[1] };
        }
      }
      return null;
    },
    positions: function (part) {  // [id, x, y] in viewport pixels of every visible point (of one sample)
      var box = canvas.getBoundingClientRect(), out = [];
      for (var k = 0; k < n; k++) {
        if (visible[k] && (part === undefined || split[k] === part)) {
          var p = screen(k, pos[k * 2], pos[k * 2 + 1]);
          out.push([ids[k], box.left + p[0], box.top + p[1]]);
        }
      }
      return out;
    },
    visibleIds: function (part) {
      var out = [];
      for (var k = 0; k < n; k++) { if (visible[k] && (part === undefined || split[k] === part)) { out.push(ids[k]); } }
      return out;
    }
  });
})();
