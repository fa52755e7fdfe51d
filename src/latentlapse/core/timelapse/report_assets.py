"""The inline stylesheet and frame-player script of the HTML pages (kept apart from the markup).

Both are plain strings placed inside ``<style>`` and ``<script>`` elements; they load nothing
from anywhere, so the pages work from disk with no network.
"""

STYLE = """
:root { --ink: #222; --dim: #666; --line: #ddd; --good: #2ca02c; --warn: #d62728; --info: #1f77b4; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1280px; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 28px; margin: 0; }
h2 { font-size: 21px; border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 16px; margin: 0 0 4px; }
.subtitle { color: var(--dim); margin: 2px 0 12px; }
.status { font-size: 14px; padding: 2px 10px; border-radius: 12px; vertical-align: middle; background: #eee; }
.status-completed { background: #e3f4e3; color: #1d6b1d; }
.status-failed, .status-interrupted { background: #fde8e8; color: #9b1c1c; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 4px 24px; margin: 0; }
dl.facts div { display: flex; gap: 8px; } dl.facts dt { color: var(--dim); min-width: 80px; } dl.facts dd { margin: 0; word-break: break-word; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 18px; min-width: 150px; }
.card .value { font-size: 24px; font-weight: 600; } .card .label { color: var(--dim); font-size: 13px; }
.note, .how { color: var(--dim); font-size: 13.5px; }
.verdict { font-size: 17px; font-weight: 600; }
.finding { border-left: 5px solid var(--line); padding: 8px 14px; margin: 10px 0; background: #fafafa; border-radius: 0 6px 6px 0; }
.finding.good { border-color: var(--good); } .finding.warning { border-color: var(--warn); background: #fff6f5; }
.finding.info { border-color: var(--info); }
.finding ul { margin: 4px 0; padding-left: 20px; } .remedy { margin: 6px 0 0; }
.badge { font-size: 11px; text-transform: uppercase; letter-spacing: 0.05em; color: #fff; background: var(--info);
         border-radius: 4px; padding: 1px 6px; vertical-align: 2px; margin-right: 4px; }
.good .badge { background: var(--good); } .warning .badge { background: var(--warn); }
.player { border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
.controls { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; margin-bottom: 8px; }
.controls button { font-size: 15px; padding: 4px 12px; cursor: pointer; }
.controls input[type=range] { flex: 1; min-width: 200px; }
.epoch-label { font-weight: 600; min-width: 230px; }
.player img, img.curves, img.wide { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 3px 10px; text-align: right; }
th { background: #f5f5f5; text-align: left; font-weight: 600; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
table.numbers { display: inline-table; margin-top: 8px; }
.side { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
td.dim, th.dim { color: var(--dim); }
.delta-up { color: #1d6b1d; } .delta-down { color: #9b1c1c; }
pre { background: #f7f7f7; padding: 10px; overflow-x: auto; font-size: 13px; }
.explorer { margin-bottom: 8px; }
.ex-tools { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; margin-bottom: 6px; font-size: 14px; }
.ex-classes { display: flex; gap: 10px; flex-wrap: wrap; } .ex-classes label { white-space: nowrap; }
.ex-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 3px; }
#ex-search { width: 210px; padding: 3px 6px; }
.ex-body { display: flex; gap: 12px; align-items: flex-start; }
.ex-map { position: relative; flex: 1; min-width: 0; }
.ex-map canvas { display: block; }
.ex-tip { position: absolute; pointer-events: none; background: rgba(255,255,255,0.96); border: 1px solid #bbb;
          border-radius: 6px; padding: 6px 9px; font-size: 13px; max-width: 260px; box-shadow: 0 2px 6px rgba(0,0,0,0.15); }
.ex-panel { width: 346px; flex: none; font-size: 13.5px; border-left: 1px solid var(--line); padding-left: 12px; min-height: 120px; }
.ex-panel canvas { display: block; margin: 4px 0 8px; }
.ex-id { font-weight: 700; word-break: break-all; } .ex-wrong { color: var(--warn); } .ex-h { font-weight: 600; margin-top: 8px; }
.ex-probs { color: var(--dim); }
table.ex-features { font-size: 12.5px; } table.ex-features td:first-child { text-align: left; }
footer { margin-top: 40px; color: var(--dim); font-size: 12px; }
"""

PLAYER_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("frames-data").textContent);
  var frames = data.frames;
  var img = document.getElementById("frame");
  var slider = document.getElementById("slider");
  var label = document.getElementById("epoch-label");
  var table = document.getElementById("frame-numbers");
  var playButton = document.getElementById("play");
  var index = 0;
  var timer = null;

  function show(i) {
    index = Math.max(0, Math.min(frames.length - 1, i));
    var frame = frames[index];
    img.src = frame.src;
    img.alt = "latent space at epoch " + frame.epoch + " (" + frame.name + ")";
    slider.value = String(index);
    label.textContent = "Epoch " + frame.epoch + " of " + data.total + " \\u00b7 frame " + (index + 1) + " of " + frames.length;
    document.dispatchEvent(new CustomEvent("latentlapse-frame", { detail: { epoch: frame.epoch, index: index } }));
    table.textContent = "";
    var head = table.insertRow();
    var body = table.insertRow();
    frame.numbers.forEach(function (pair) {
      var th = document.createElement("th");
      th.textContent = pair[0];
      head.appendChild(th);
      body.insertCell().textContent = pair[1];
    });
  }
  function pause() {
    if (timer !== null) { clearInterval(timer); }
    timer = null;
    playButton.textContent = "\\u25b6 Play";
  }
  function play() {
    if (index >= frames.length - 1) { show(0); }
    timer = setInterval(function () {
      if (index >= frames.length - 1) { pause(); } else { show(index + 1); }
    }, 700);
    playButton.textContent = "\\u275a\\u275a Pause";
  }
  playButton.addEventListener("click", function () { if (timer === null) { play(); } else { pause(); } });
  document.getElementById("prev").addEventListener("click", function () { pause(); show(index - 1); });
  document.getElementById("next").addEventListener("click", function () { pause(); show(index + 1); });
  slider.addEventListener("input", function () { pause(); show(Number(slider.value)); });
  document.addEventListener("keydown", function (event) {
    var own = ["ArrowLeft", "ArrowRight", "Home", "End"];
    if (event.target === slider && own.indexOf(event.key) >= 0) { return; }  // the slider steps itself
    if (event.key === "ArrowRight") { pause(); show(index + 1); }
    else if (event.key === "ArrowLeft") { pause(); show(index - 1); }
    else if (event.key === "Home") { pause(); show(0); }
    else if (event.key === "End") { pause(); show(frames.length - 1); }
    else if (event.key === " " && event.target.tagName !== "BUTTON" && event.target.type !== "checkbox") { if (timer === null) { play(); } else { pause(); } }
    else { return; }
    event.preventDefault();
  });
  show(0);
})();
"""
