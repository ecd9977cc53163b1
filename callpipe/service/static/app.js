// callpipe analyst UI: dashboard charts (Plotly, served by the app) and click-to-seek transcripts.
(function () {
  "use strict";
  var COLORS = { processed: "#1f9d55", pending: "#d98a00", failed: "#d64545",
    positive: "#1f9d55", neutral: "#9aa3b5", negative: "#d64545", frustrated: "#e07b1a" };
  var LAYOUT = { margin: { l: 44, r: 12, t: 8, b: 40 }, barmode: "stack", legend: { orientation: "h", y: -0.2 },
    font: { family: "system-ui, sans-serif", size: 12 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    xaxis: { type: "category" } };
  var CONFIG = { displayModeBar: false, responsive: true };

  function layout(extra) { return Object.assign({}, LAYOUT, extra || {}); }
  function byKey(rows, key, valueKey) {
    var days = [], groups = {};
    rows.forEach(function (r) {
      if (days.indexOf(r.call_date) < 0) days.push(r.call_date);
      (groups[r[key]] = groups[r[key]] || {})[r.call_date] = r[valueKey];
    });
    days.sort();
    return Object.keys(groups).sort().map(function (g) {
      return { type: "bar", name: String(g).replace(/_/g, " "), x: days, marker: { color: COLORS[g] },
        y: days.map(function (d) { return groups[g][d] || 0; }) };
    });
  }
  function plot(id, traces, extra) {
    var el = document.getElementById(id);
    if (!el || !window.Plotly) return;
    Plotly.newPlot(el, traces, layout(extra), CONFIG);
  }

  function dashboard() {
    var node = document.getElementById("dash-data");
    if (!node) return;
    var data = JSON.parse(node.textContent);
    var days = data.per_day.map(function (d) { return d.call_date; });
    plot("chart-calls", ["processed", "pending", "failed"].map(function (k) {
      return { type: "bar", name: k, x: days, y: data.per_day.map(function (d) { return d[k] || 0; }), marker: { color: COLORS[k] } };
    }));
    plot("chart-sentiment", byKey(data.sentiment_by_day, "label", "calls"));
    plot("chart-intent", byKey(data.intent_by_day, "intent", "calls"));
    var topics = data.top_topics.slice(0, 12).reverse();
    plot("chart-topics", [{ type: "bar", orientation: "h", marker: { color: "#7b4fd6" },
      x: topics.map(function (t) { return t.calls; }), y: topics.map(function (t) { return t.topic; }) }],
      { margin: { l: 130, r: 12, t: 8, b: 30 }, xaxis: {}, yaxis: { automargin: true } });
    plot("chart-talk", [
      { type: "bar", name: "talk", x: days, y: data.per_day.map(function (d) { return d.talk_seconds || 0; }), marker: { color: "#2457d6" } },
      { type: "bar", name: "silence", x: days, y: data.per_day.map(function (d) { return d.silence_seconds || 0; }), marker: { color: "#b8c4dd" } }]);
    plot("chart-wer", [
      { type: "scatter", mode: "lines+markers", name: "live", x: days, y: data.per_day.map(function (d) { return d.avg_live_wer; }), line: { color: "#d98a00" } },
      { type: "scatter", mode: "lines+markers", name: "offline", x: days, y: data.per_day.map(function (d) { return d.avg_offline_wer; }), line: { color: "#1f9d55" } }],
      { barmode: undefined, yaxis: { tickformat: ".0%", rangemode: "tozero" } });
  }

  function transcript() {
    var player = document.getElementById("player");
    var turns = document.querySelectorAll(".turn[data-start]");
    if (!player || !turns.length) return;
    function seek(el) {
      player.currentTime = parseFloat(el.getAttribute("data-start")) || 0;
      var p = player.play(); if (p && p.catch) p.catch(function () {});
    }
    turns.forEach(function (el) {
      el.addEventListener("click", function () { seek(el); });
      el.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); seek(el); } });
    });
    player.addEventListener("timeupdate", function () {
      var t = player.currentTime, current = null;
      turns.forEach(function (el) { if (parseFloat(el.getAttribute("data-start")) <= t) current = el; });
      turns.forEach(function (el) { el.classList.toggle("playing", el === current && !player.paused); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { dashboard(); transcript(); });
})();
