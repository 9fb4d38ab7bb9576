/* scrapegrid SVG line chart, served at /ui/static/graph.js.
 * SGGraph.draw(container, series, {start, end, step})
 *   series: Prometheus matrix result entries: {labels|metric: {...}, values: [[unixSec, "v"], ...]}
 * Draws svg.graph (g.grid, g.x-axis, g.y-axis, path.series-line per series) plus ul#legend,
 * with a hover tooltip; clicking a legend item isolates that series (click again to undo). */
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";
  var HEIGHT = 360;
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#b5cf6b", "#843c39", "#7b4173"];
  // Candidate x tick intervals in seconds.
  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
    21600, 43200, 86400, 172800, 604800];
  var clipSeq = 0;

  function svg(tag, attrs, parent) {
    var n = document.createElementNS(SVGNS, tag);
    for (var k in attrs) if (attrs[k] !== undefined) n.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(n);
    return n;
  }
  function html(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function labelsOf(s) { return s.labels || s.metric || {}; }
  function seriesName(l) {
    var parts = Object.keys(l).filter(function (k) { return k !== "__name__"; })
      .map(function (k) { return k + '="' + l[k] + '"'; });
    return (l.__name__ || "") + "{" + parts.join(", ") + "}";
  }

  // "Nice" step (1, 2, 2.5, 5 x 10^n) for roughly `count` ticks over `range`.
  function niceStep(range, count) {
    var raw = range / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }

  // Y tick formatter sharing one SI suffix for the whole axis.
  function yFormatter(maxAbs, step) {
    var units = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];
    var u = [1, ""];
    if (maxAbs > 0) for (var i = 0; i < units.length; i++) if (maxAbs >= units[i][0]) { u = units[i]; break; }
    var st = step / u[0], dec = 0;
    while (dec < 6 && Math.abs(Math.round(st * Math.pow(10, dec)) - st * Math.pow(10, dec)) > 1e-6) dec++;
    return function (v) {
      if (Math.abs(v) < step * 1e-6) return "0";
      var s = (v / u[0]).toFixed(dec);
      if (/^-0(\.0*)?$/.test(s)) s = s.slice(1);
      return s + u[1];
    };
  }

  function timeLabel(sec, interval) {
    var d = new Date(sec * 1000);
    if (interval >= 86400) return pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    var s = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return interval < 60 ? s + ":" + pad(d.getSeconds()) : s;
  }
  function fullTime(sec) {
    var d = new Date(sec * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  // X ticks aligned to the local clock (midnight for day intervals).
  function timeTicks(start, end, maxTicks) {
    var range = end - start, iv = TIME_STEPS[TIME_STEPS.length - 1];
    for (var i = 0; i < TIME_STEPS.length; i++) if (range / TIME_STEPS[i] <= maxTicks) { iv = TIME_STEPS[i]; break; }
    var off = -new Date(start * 1000).getTimezoneOffset() * 60; // local = utc + off
    var align = iv > 86400 ? 86400 : iv;
    var t = Math.ceil((start + off) / align) * align - off, ticks = [];
    for (; t <= end && ticks.length < 500; t += iv) ticks.push(t);
    return { ticks: ticks, interval: iv };
  }

  function render(container) {
    var st = container.__sgGraph;
    var series = st.series, opts = st.opts;
    var width = Math.max(320, container.clientWidth || 800);
    st.width = width;
    while (container.firstChild) container.removeChild(container.firstChild);

    // Parse points once per render; non-finite values become gap markers (null).
    var parsed = series.map(function (s) {
      return (s.values || []).map(function (p) {
        var v = parseFloat(p[1]);
        if (p[1] === "+Inf" || p[1] === "-Inf" || p[1] === "NaN") v = NaN;
        return [Number(p[0]), isFinite(v) ? v : null, String(p[1])];
      });
    });
    var visible = function (i) { return st.isolated === null || st.isolated === i; };

    // Domains.
    var tMin = Infinity, tMax = -Infinity, yMin = Infinity, yMax = -Infinity;
    parsed.forEach(function (pts, i) {
      pts.forEach(function (p) {
        tMin = Math.min(tMin, p[0]); tMax = Math.max(tMax, p[0]);
        if (p[1] !== null && visible(i)) { yMin = Math.min(yMin, p[1]); yMax = Math.max(yMax, p[1]); }
      });
    });
    var start = isFinite(opts.start) ? Number(opts.start) : tMin;
    var end = isFinite(opts.end) ? Number(opts.end) : tMax;
    var step = Number(opts.step) > 0 ? Number(opts.step) : Math.max(1, (end - start) / 250);
    if (!(end > start)) { start -= step; end += step; }
    if (!isFinite(yMin)) { yMin = 0; yMax = 1; }
    if (yMin === yMax) { // all-equal values: pad around the value
      var padY = yMin === 0 ? 1 : Math.abs(yMin) * 0.1;
      yMin = yMin === 0 ? 0 : yMin - padY; yMax += padY;
    }
    var plotH = HEIGHT - 12 - 26;
    var ys = niceStep(yMax - yMin, Math.max(2, Math.floor(plotH / 45)));
    yMin = Math.floor(yMin / ys + 1e-9) * ys; yMax = Math.ceil(yMax / ys - 1e-9) * ys;
    var yfmt = yFormatter(Math.max(Math.abs(yMin), Math.abs(yMax)), ys);
    var yTicks = [];
    for (var v = yMin; v <= yMax + ys / 2; v += ys) yTicks.push(Math.round(v / ys) * ys);
    var yLabels = yTicks.map(yfmt);
    var longest = yLabels.reduce(function (m, s) { return Math.max(m, s.length); }, 1);

    var M = { l: 14 + longest * 6.6, r: 16, t: 12, b: 26 };
    var plotW = width - M.l - M.r;
    var X = function (t) { return M.l + (t - start) / (end - start) * plotW; };
    var Y = function (val) { return M.t + (yMax - val) / (yMax - yMin) * plotH; };

    var root = svg("svg", { class: "graph", width: width, height: HEIGHT, viewBox: "0 0 " + width + " " + HEIGHT });
    var clipId = "sg-clip-" + (++clipSeq);
    svg("rect", { x: M.l, y: M.t - 2, width: plotW, height: plotH + 4 }, svg("clipPath", { id: clipId }, svg("defs", {}, root)));
    var grid = svg("g", { class: "grid" }, root);
    var xAxis = svg("g", { class: "x-axis" }, root);
    var yAxis = svg("g", { class: "y-axis" }, root);

    yTicks.forEach(function (val, i) {
      var y = Y(val);
      svg("line", { x1: M.l, x2: M.l + plotW, y1: y, y2: y }, grid);
      var tx = svg("text", { x: M.l - 6, y: y + 4, "text-anchor": "end" }, yAxis);
      tx.textContent = yLabels[i];
    });
    var xt = timeTicks(start, end, Math.max(2, Math.floor(plotW / 90)));
    xt.ticks.forEach(function (t) {
      var x = X(t);
      svg("line", { x1: x, x2: x, y1: M.t, y2: M.t + plotH }, grid);
      svg("line", { class: "axis-line", x1: x, x2: x, y1: M.t + plotH, y2: M.t + plotH + 4 }, xAxis);
      var tx = svg("text", { x: x, y: M.t + plotH + 17, "text-anchor": "middle" }, xAxis);
      tx.textContent = timeLabel(t, xt.interval);
    });
    svg("line", { class: "axis-line", x1: M.l, x2: M.l + plotW, y1: M.t + plotH, y2: M.t + plotH }, xAxis);
    svg("line", { class: "axis-line", x1: M.l, x2: M.l, y1: M.t, y2: M.t + plotH }, yAxis);

    // Series paths; break on NaN/Inf and on gaps longer than 1.5 steps.
    var lines = svg("g", { class: "series", "clip-path": "url(#" + clipId + ")" }, root);
    var hits = []; // pixel positions for the tooltip search
    parsed.forEach(function (pts, i) {
      var color = PALETTE[i % PALETTE.length];
      var d = [], runLen = 0, prevT = null, lone = [];
      var flush = function () { if (runLen === 1) lone.push(d[d.length - 1]); runLen = 0; };
      pts.forEach(function (p) {
        if (p[1] === null || (prevT !== null && p[0] - prevT > 1.5 * step)) flush();
        prevT = p[0];
        if (p[1] === null) return;
        var x = X(p[0]), y = Y(p[1]);
        d.push((runLen === 0 ? "M" : "L") + x.toFixed(1) + " " + y.toFixed(1));
        runLen++;
        if (visible(i)) hits.push({ x: x, y: y, i: i, t: p[0], v: p[2] });
      });
      flush();
      var path = svg("path", { class: "series-line", d: d.join(" ") || "M0 0", stroke: color, "data-series-index": i }, lines);
      if (!visible(i)) path.style.display = "none";
      // Isolated points (a run of one sample) would be invisible as a path: draw dots.
      if (visible(i)) lone.forEach(function (cmd) {
        var xy = cmd.slice(1).split(" ");
        svg("circle", { class: "series-point", cx: xy[0], cy: xy[1], r: 2.5, fill: color, "data-series-index": i }, lines);
      });
    });

    // Hover: nearest point (by pixel distance) among visible series.
    var hoverLine = svg("line", { class: "hover-line", y1: M.t, y2: M.t + plotH, visibility: "hidden" }, root);
    var hoverDot = svg("circle", { r: 4, fill: "none", "stroke-width": 2, visibility: "hidden" }, root);
    var tip = html("div", "graph-tooltip");
    tip.style.display = "none";
    var wrap = html("div", "graph-wrap");
    wrap.style.position = "relative";
    wrap.appendChild(root); wrap.appendChild(tip);

    root.addEventListener("mousemove", function (e) {
      var r = root.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
      var best = null, bd = Infinity;
      for (var k = 0; k < hits.length; k++) {
        var dx = hits[k].x - mx, dy = hits[k].y - my, dd = dx * dx * 4 + dy * dy; // favour time proximity
        if (dd < bd) { bd = dd; best = hits[k]; }
      }
      if (!best || mx < M.l - 10 || mx > M.l + plotW + 10) { hide(); return; }
      var color = PALETTE[best.i % PALETTE.length];
      hoverLine.setAttribute("x1", best.x); hoverLine.setAttribute("x2", best.x);
      hoverLine.setAttribute("visibility", "visible");
      hoverDot.setAttribute("cx", best.x); hoverDot.setAttribute("cy", best.y);
      hoverDot.setAttribute("stroke", color); hoverDot.setAttribute("visibility", "visible");
      while (tip.firstChild) tip.removeChild(tip.firstChild);
      tip.appendChild(html("div", "tt-time", fullTime(best.t)));
      var val = html("div", "tt-value");
      var sw = html("span", "swatch"); sw.style.background = color; sw.style.marginRight = "5px";
      val.appendChild(sw); val.appendChild(document.createTextNode(best.v));
      tip.appendChild(val);
      tip.appendChild(html("div", "tt-labels", seriesName(labelsOf(series[best.i]))));
      tip.style.display = "block";
      // Keep the tooltip inside the chart: flip to the left half when near the right edge.
      var left = best.x + 14, top = Math.max(0, best.y - 10);
      if (left + tip.offsetWidth > width) left = Math.max(0, best.x - 14 - tip.offsetWidth);
      if (top + tip.offsetHeight > HEIGHT) top = Math.max(0, HEIGHT - tip.offsetHeight);
      tip.style.left = left + "px"; tip.style.top = top + "px";
    });
    function hide() {
      tip.style.display = "none";
      hoverLine.setAttribute("visibility", "hidden"); hoverDot.setAttribute("visibility", "hidden");
    }
    root.addEventListener("mouseleave", hide);

    // Legend.
    var legend = html("ul");
    legend.id = "legend";
    series.forEach(function (s, i) {
      var l = labelsOf(s);
      var li = html("li", "legend-item" + (visible(i) ? "" : " dimmed"));
      li.setAttribute("data-series-index", i);
      li.title = "click to isolate / show all";
      var sw = html("span", "swatch"); sw.style.background = PALETTE[i % PALETTE.length];
      li.appendChild(sw);
      li.appendChild(html("span", "legend-name", seriesName(l)));
      li.addEventListener("click", function () {
        st.isolated = st.isolated === i ? null : i;
        render(container);
      });
      legend.appendChild(li);
    });

    container.appendChild(wrap);
    container.appendChild(legend);
  }

  // Remove a chart (and its resize observer) from the container.
  function clear(container) {
    var old = container.__sgGraph;
    if (old && old.observer) old.observer.disconnect();
    if (old && old.onResize) window.removeEventListener("resize", old.onResize);
    container.__sgGraph = null;
    container.classList.remove("empty");
    while (container.firstChild) container.removeChild(container.firstChild);
  }

  function draw(container, series, opts) {
    clear(container);
    series = (series || []).filter(function (s) { return s && s.values && s.values.length; });
    if (!series.length) {
      container.classList.add("empty");
      container.textContent = "no data";
      return;
    }
    container.classList.remove("empty");
    var st = { series: series, opts: opts || {}, isolated: null, width: 0, observer: null };
    container.__sgGraph = st;
    render(container);
    // Width follows the container: redraw (debounced, outside the observer callback
    // to avoid "ResizeObserver loop" errors) when its width changes.
    var timer = null;
    st.onResize = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (container.__sgGraph === st && Math.abs(Math.max(320, container.clientWidth) - st.width) >= 1) render(container);
      }, 40);
    };
    window.addEventListener("resize", st.onResize);
    if (window.ResizeObserver) {
      st.observer = new ResizeObserver(st.onResize);
      st.observer.observe(container);
    }
  }

  window.SGGraph = { draw: draw, clear: clear, palette: PALETTE };
})();
