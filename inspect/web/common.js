// Shared by the page's scripts: text in two languages, element helpers, verdict icons, fetch with the token.
// Nothing here is fetched from elsewhere: a factory network has no internet.
"use strict";
window.PCB = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const VERDICTS = ["PASS", "FAIL", "REVIEW", "ERROR"];
  // One colour per class, bright on a dark board; the class name is always written beside the box too.
  const CLASS_COLOURS = { open: "#ff5c5c", short: "#ffa31a", mousebite: "#d98cff", spur: "#3ddc84",
                          copper: "#4db2ff", "pin-hole": "#f5e642" };
  const state = {
    i18n: { en: {}, zh: {} }, lang: "en", config: null,
    token: sessionStorage.getItem("pcb.token") || "",
    operator: sessionStorage.getItem("pcb.operator") || "",
    onLang: [],
  };

  function t(key, vars) {
    let s = (state.i18n[state.lang] || {})[key];
    if (s === undefined) s = state.i18n.en[key];
    if (s === undefined) s = key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
    return s;
  }
  const cls = (name) => t(`cls_${name}`);
  const verdictWord = (v) => t(`verdict_${v || "NONE"}`);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  function svg(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    if (parent) parent.append(e);
    return e;
  }

  // Each verdict has a shape of its own (circle, octagon, diamond, triangle), not only a colour.
  const SHAPES = {
    PASS: [["circle", { class: "fill", cx: 50, cy: 50, r: 46 }], ["path", { class: "cut", d: "M27 52 L44 68 L74 34" }]],
    FAIL: [["polygon", { class: "fill", points: "31,4 69,4 96,31 96,69 69,96 31,96 4,69 4,31" }],
           ["path", { class: "cut", d: "M33 33 L67 67 M67 33 L33 67" }]],
    REVIEW: [["rect", { class: "fill", x: 17, y: 17, width: 66, height: 66, rx: 8, transform: "rotate(45 50 50)" }],
             ["path", { class: "cut", d: "M39 40 a11 11 0 1 1 15 10 c-4 2 -4 4 -4 9 M50 72 L50 72.1" }]],
    ERROR: [["path", { class: "fill", d: "M50 5 Q53 5 55 9 L96 86 Q98 93 91 93 L9 93 Q2 93 4 86 L45 9 Q47 5 50 5 Z" }],
            ["path", { class: "cut", d: "M50 35 L50 60 M50 76 L50 76.1" }]],
    NONE: [["circle", { class: "fill", cx: 50, cy: 50, r: 46 }], ["path", { class: "cut", d: "M30 50 L30.1 50 M50 50 L50.1 50 M70 50 L70.1 50" }]],
  };

  function drawIcon(target, verdict) {
    target.replaceChildren();
    for (const [tag, attrs] of SHAPES[verdict] || SHAPES.NONE) svg(tag, attrs, target);
    return target;
  }

  function icon(verdict) {
    return drawIcon(svg("svg", { viewBox: "0 0 100 100", class: "vicon", "aria-hidden": "true" }), verdict);
  }

  function chip(verdict) {
    return el("span", { class: `chip v-${verdict}` }, icon(verdict), el("span", { text: verdictWord(verdict) }));
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (state.token) h.Authorization = `Bearer ${state.token}`;
    return h;
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: headers(), credentials: "same-origin" });
    if (!r.ok) throw Object.assign(new Error(`${url}: ${r.status}`), { status: r.status });
    return r.json();
  }

  async function errorText(r) {
    try {
      const body = await r.json();
      return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (e) {
      return `HTTP ${r.status}`;
    }
  }

  function time(ts) {
    if (!ts) return "–";
    return new Date(ts * 1000).toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  }

  function hhmm(ts) {
    const d = new Date(ts * 1000);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  function applyLang() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.title = `${t("title")} · pcb-inspect`;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
    for (const fn of state.onLang) fn();
  }

  function setLang(lang) {
    state.lang = lang === "zh" ? "zh" : "en";
    localStorage.setItem("pcb.lang", state.lang);
    applyLang();
  }

  function remember(operator, token) {
    state.operator = operator;
    state.token = token;
    if (token) {
      sessionStorage.setItem("pcb.token", token);
      sessionStorage.setItem("pcb.operator", operator);
    } else {
      sessionStorage.removeItem("pcb.token");
      sessionStorage.removeItem("pcb.operator");
    }
    applyLang();
  }

  // Fit an image into a canvas (contain): the transform from image pixels to canvas pixels.
  function fit(canvas, w, h) {
    const r = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(r.width * dpr));
    canvas.height = Math.max(1, Math.round(r.height * dpr));
    const scale = w && h ? Math.min(canvas.width / w, canvas.height / h) : 1;
    return { scale, ox: (canvas.width - w * scale) / 2, oy: (canvas.height - h * scale) / 2, dpr };
  }

  // A defect box, padded so a 10-pixel defect is visible from across the room, with its number and name.
  function drawBox(ctx, f, box, colour, label, opts) {
    const o = opts || {};
    const pad = 5 * f.dpr;
    const x = f.ox + box[0] * f.scale - pad, y = f.oy + box[1] * f.scale - pad;
    const w = (box[2] - box[0]) * f.scale + 2 * pad, h = (box[3] - box[1]) * f.scale + 2 * pad;
    ctx.save();
    ctx.lineWidth = (o.bold ? 5 : 3) * f.dpr;
    ctx.strokeStyle = colour;
    if (o.dashed) ctx.setLineDash([8 * f.dpr, 6 * f.dpr]);
    ctx.strokeRect(x, y, w, h);
    if (o.cross) {
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + w, y + h); ctx.moveTo(x + w, y); ctx.lineTo(x, y + h); ctx.stroke();
    }
    if (label) {
      ctx.setLineDash([]);
      ctx.font = `700 ${Math.round((o.font || 16) * f.dpr)}px ${getComputedStyle(document.body).fontFamily}`;
      const tw = ctx.measureText(label).width + 10 * f.dpr, th = (o.font || 16) * 1.35 * f.dpr;
      let ly = y - th - 2 * f.dpr;
      if (ly < 0) ly = y + h + 2 * f.dpr;
      const lx = Math.max(0, Math.min(x, ctx.canvas.width - tw));
      ctx.fillStyle = colour;
      ctx.fillRect(lx, ly, tw, th);
      ctx.fillStyle = "#111";
      ctx.textBaseline = "middle";
      ctx.fillText(label, lx + 5 * f.dpr, ly + th / 2);
    }
    ctx.restore();
  }

  function toast(text, bad) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.className = bad ? "bad" : "";
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
  }

  return { state, t, cls, verdictWord, el, svg, icon, drawIcon, chip, headers, getJSON, errorText, time, hhmm,
           applyLang, setLang, remember, fit, drawBox, toast, VERDICTS, CLASS_COLOURS };
})();
