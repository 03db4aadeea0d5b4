// The shift's charts, drawn here from /api/shift as inline SVG: defects by class (Pareto) and the yield trend.
"use strict";
PCB.charts = (() => {
  const { t, cls, svg, hhmm, CLASS_COLOURS } = PCB;

  function frame(target) {
    const r = target.getBoundingClientRect();
    const w = Math.max(120, Math.round(r.width)), h = Math.max(100, Math.round(r.height));
    target.replaceChildren();
    target.setAttribute("viewBox", `0 0 ${w} ${h}`);
    return { w, h };
  }

  function empty(target, w, h) {
    svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "dim", "font-size": 16, text: t("no_data") }, target);
  }

  // Bars by count, most first, with the cumulative share as a line against the right-hand axis.
  function pareto(target, rows) {
    const { w, h } = frame(target);
    if (!rows || !rows.length) return empty(target, w, h);
    const names = rows.map((r) => cls(r.cls));
    const slot0 = (w - 42) / rows.length;
    // names that do not fit under their bar are written slanted (wide characters count double)
    const width = (s) => [...s].reduce((n, c) => n + (c.charCodeAt(0) > 0x2e80 ? 13 : 7.2), 0);
    const slant = names.some((n) => width(n) > slot0 - 4);
    const m = { l: 8, r: 34, t: 22, b: slant ? 48 : 26 };
    const pw = w - m.l - m.r, ph = h - m.t - m.b;
    const most = Math.max(...rows.map((r) => r.count));
    const slot = pw / rows.length, bw = Math.min(slot * 0.7, 56);
    svg("line", { x1: m.l, y1: m.t + ph, x2: m.l + pw, y2: m.t + ph, class: "axis" }, target);
    svg("line", { x1: m.l + pw, y1: m.t, x2: m.l + pw, y2: m.t + ph, class: "axis" }, target);
    for (const p of [0, 50, 100]) {
      svg("text", { x: m.l + pw + 4, y: m.t + ph - (p / 100) * ph + 4, "font-size": 11, class: "dim", text: `${p}%` }, target);
    }
    const points = [];
    rows.forEach((r, k) => {
      const x = m.l + slot * k + (slot - bw) / 2;
      const bh = (r.count / most) * (ph - 4);
      svg("rect", { x, y: m.t + ph - bh, width: bw, height: bh, rx: 3, fill: CLASS_COLOURS[r.cls] || "#888" }, target);
      svg("text", { x: x + bw / 2, y: m.t + ph - bh - 4, "text-anchor": "middle", "font-size": 14, "font-weight": 700,
                    text: String(r.count) }, target);
      if (slant) {
        const tx = x + bw / 2 + 4, ty = m.t + ph + 14;
        svg("text", { x: tx, y: ty, "text-anchor": "end", "font-size": 13, transform: `rotate(-35 ${tx} ${ty})`,
                      text: names[k] }, target);
      } else {
        svg("text", { x: x + bw / 2, y: h - 8, "text-anchor": "middle", "font-size": 13, text: names[k] }, target);
      }
      points.push([x + bw / 2, m.t + ph - (r.cumulative_pct / 100) * ph]);
    });
    svg("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#e6edf3",
                      "stroke-width": 2 }, target);
    for (const [x, y] of points) svg("circle", { cx: x, cy: y, r: 3.5, fill: "#e6edf3" }, target);
  }

  // Yield per interval of the shift; the last value written large beside its point.
  function trend(target, rows) {
    const { w, h } = frame(target);
    const pts = (rows || []).filter((r) => r.yield_pct !== null && r.yield_pct !== undefined);
    if (!pts.length) return empty(target, w, h);
    const m = { l: 40, r: 12, t: 26, b: 22 };
    const pw = w - m.l - m.r, ph = h - m.t - m.b;
    const low = Math.min(90, Math.floor(Math.min(...pts.map((p) => p.yield_pct)) / 10) * 10);
    const y = (v) => m.t + ph - ((v - low) / (100 - low)) * ph;
    const x = (k) => m.l + (pts.length === 1 ? pw / 2 : (k / (pts.length - 1)) * pw);
    for (const v of [low, (low + 100) / 2, 100]) {
      svg("line", { x1: m.l, y1: y(v), x2: m.l + pw, y2: y(v), class: "axis" }, target);
      svg("text", { x: m.l - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 11, class: "dim", text: `${Math.round(v)}%` }, target);
    }
    svg("polyline", { points: pts.map((p, k) => `${x(k)},${y(p.yield_pct)}`).join(" "), fill: "none",
                      stroke: "#7ee787", "stroke-width": 3, "stroke-linejoin": "round" }, target);
    pts.forEach((p, k) => svg("circle", { cx: x(k), cy: y(p.yield_pct), r: 3, fill: "#7ee787" }, target));
    const last = pts[pts.length - 1];
    svg("text", { x: m.l + pw, y: 16, "text-anchor": "end", "font-size": 16, "font-weight": 700,
                  text: `${last.yield_pct.toFixed(1)}%` }, target);
    svg("text", { x: m.l, y: h - 5, "font-size": 11, class: "dim", text: hhmm(pts[0].start) }, target);
    svg("text", { x: m.l + pw, y: h - 5, "text-anchor": "end", "font-size": 11, class: "dim",
                  text: hhmm(last.start + last.seconds) }, target);
  }

  return { pareto, trend };
})();
