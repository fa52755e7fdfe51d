/* latentlapse report: the explorer's side-panel charts (spectrum, features, training history).
 *
 * Plain canvas drawing, no state of its own: explorer.js calls plots.spectrum, plots.features and
 * plots.history with the selected source's numbers. Both files go into one inline script.
 */
var plots = (function () {
  "use strict";
  function line(parent, text, cls) {
    var div = document.createElement("div");
    div.textContent = text;
    div.className = cls;
    parent.appendChild(div);
  }
  function smallCanvas(panel, width, height, id) {
    var c = document.createElement("canvas"), dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr); c.height = Math.round(height * dpr);
    c.style.width = width + "px"; c.style.height = height + "px";
    if (id) { c.id = id; }
    panel.appendChild(c);
    var g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.font = "11px system-ui, sans-serif";
    return { canvas: c, g: g };
  }
  function spectrum(panel, energy, row, counts, color) {  // counts per keV against energy, log-log
    var width = energy.length > 1 ? energy[1] - energy[0] : 1;
    var scale = counts === null ? 1 / width : counts / width;
    var pts = [];
    row.forEach(function (v, j) { var y = v * scale; if (y > 0 && isFinite(y)) { pts.push([energy[j], y]); } });
    line(panel, counts === null ? "Spectrum (normalised, per keV)" : "Spectrum: " + Math.round(counts) + " net counts", "ex-h");
    var W = 330, H = 200, L = 46, B = 28, T = 8, R = 8, plot = smallCanvas(panel, W, H, "ex-spectrum"), g = plot.g;
    plot.canvas.setAttribute("data-points", String(pts.length));
    if (!pts.length) { return; }
    var ymin = Infinity, ymax = 0;
    pts.forEach(function (p) { ymin = Math.min(ymin, p[1]); ymax = Math.max(ymax, p[1]); });
    var lx0 = Math.log10(0.5), lx1 = Math.log10(10), ly0 = Math.floor(Math.log10(ymin)), ly1 = Math.ceil(Math.log10(ymax));
    if (ly1 === ly0) { ly1 += 1; }
    function px(e) { return L + (Math.log10(e) - lx0) / (lx1 - lx0) * (W - L - R); }
    function py(v) { return H - B - (Math.log10(v) - ly0) / (ly1 - ly0) * (H - B - T); }
    axes(g, W, H, L, B, T, R);
    g.fillStyle = "#444"; g.textAlign = "center";
    [0.5, 1, 2, 5, 10].forEach(function (e) { g.fillText(String(e), px(e), H - B + 13); });
    g.fillText("energy (keV)", L + (W - L - R) / 2, H - 3);
    g.textAlign = "right";
    for (var d = ly0; d <= ly1; d++) { g.fillText("1e" + d, L - 4, py(Math.pow(10, d)) + 4); }
    g.save(); g.translate(11, T + (H - B - T) / 2); g.rotate(-Math.PI / 2); g.textAlign = "center";
    g.fillText(counts === null ? "fraction / keV" : "counts / keV", 0, 0); g.restore();
    g.strokeStyle = color; g.lineWidth = 1.2; g.beginPath();
    pts.forEach(function (p, i) { if (i) { g.lineTo(px(p[0]), py(p[1])); } else { g.moveTo(px(p[0]), py(p[1])); } });
    g.stroke();
  }
  function features(panel, names, row) {  // a catalogue source's column values
    line(panel, "Features", "ex-h");
    var table = document.createElement("table");
    table.className = "ex-features";
    names.forEach(function (name, j) {
      var tr = table.insertRow();
      tr.insertCell().textContent = name;
      tr.insertCell().textContent = isNaN(row[j]) ? "\u2013" : Number(row[j].toPrecision(5)).toString();
    });
    panel.appendChild(table);
  }
  function axes(g, W, H, L, B, T, R) {
    g.strokeStyle = "#999"; g.lineWidth = 1;
    g.strokeRect(L, T, W - L - R, H - B - T);
  }
  function history(panel, h, epoch, withMargin) {  // h: [{epoch, p, margin}]; the current epoch marked
    if (!h.length) { return; }
    line(panel, withMargin ? "True-class probability (blue) and margin (orange), every epoch" : "True-class probability at each frame", "ex-h");
    var W = 330, H = 150, L = 36, B = 26, T = 8, R = 36, plot = smallCanvas(panel, W, H, "ex-history"), g = plot.g;
    var e0 = h[0].epoch, e1 = Math.max(h[h.length - 1].epoch, e0 + 1);
    function px(e) { return L + (e - e0) / (e1 - e0) * (W - L - R); }
    var mmax = 0;
    h.forEach(function (r) { if (isFinite(r.margin)) { mmax = Math.max(mmax, Math.abs(r.margin)); } });
    mmax = mmax || 1;
    axes(g, W, H, L, B, T, R);
    g.fillStyle = "#444"; g.textAlign = "center";
    g.fillText(String(e0), px(e0), H - B + 13); g.fillText(String(e1), px(e1), H - B + 13);
    g.fillText("epoch", L + (W - L - R) / 2, H - 3);
    g.textAlign = "right"; g.fillText("1", L - 4, T + 8); g.fillText("0", L - 4, H - B);
    if (withMargin) { g.textAlign = "left"; g.fillText("+" + mmax.toFixed(1), W - R + 3, T + 8); g.fillText("\u2212" + mmax.toFixed(1), W - R + 3, H - B); }
    g.strokeStyle = "#ccc"; g.beginPath(); g.moveTo(px(epoch), T); g.lineTo(px(epoch), H - B); g.stroke();
    function curve(value, color) {
      g.strokeStyle = color; g.lineWidth = 1.3; g.beginPath();
      var started = false;
      h.forEach(function (r) {
        var v = value(r);
        if (!isFinite(v)) { return; }
        var y = T + (1 - v) * (H - B - T);
        if (started) { g.lineTo(px(r.epoch), y); } else { g.moveTo(px(r.epoch), y); started = true; }
      });
      g.stroke();
    }
    if (withMargin) { curve(function (r) { return 0.5 + r.margin / (2 * mmax); }, "#ff7f0e"); }
    curve(function (r) { return r.p; }, "#1f77b4");
  }

  return { spectrum: spectrum, features: features, history: history };
})();
