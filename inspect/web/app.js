// The live page: one server-sent event per board (at most ~10 a second), the current board drawn with its
// defects, the shift's counters, the recent rejects, and the charts refreshed every few seconds.
"use strict";
(() => {
  const { state, t, cls, el, icon, drawIcon, verdictWord, getJSON, time, hhmm, fit, drawBox, CLASS_COLOURS } = PCB;
  const $ = (id) => document.getElementById(id);
  const GALLERY = 8;
  const live = { current: null, image: null, imageFor: null, pending: null, loading: false, status: null, shift: null,
                 rejects: [], galleryDirty: true, shown: "", charts: null, pareto: "shift", connected: false };

  function fmt(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    return Number(n).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-US",
                                    { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 });
  }

  // -- the banner and the current board ------------------------------------------------------------
  function banner() {
    const ins = live.current, v = ins ? ins.verdict : "NONE";
    $("banner").className = `banner v-${v}`;
    drawIcon($("banner-icon"), v);
    $("verdict").textContent = verdictWord(ins ? v : null);
    if (!ins) {
      $("banner-sub").textContent = t("waiting");
      return;
    }
    const counts = {};
    for (const d of ins.defects) counts[d.cls] = (counts[d.cls] || 0) + 1;
    const what = Object.entries(counts).map(([c, n]) => (n > 1 ? `${cls(c)} ×${n}` : cls(c))).join(", ");
    const detail = v === "ERROR" ? ins.error : ins.defects.length ? `${t("defects_n", { n: ins.defects.length })}: ${what}` : t("no_defects");
    $("banner-sub").textContent = `${t("board")} ${ins.board_id || "–"} · ${detail}`;
  }

  function show(ins) {
    live.current = ins;
    banner();
    if (ins.pictures) {
      live.pending = ins;
      if (!live.loading) loadNext();
    } else {
      drawBoard();
    }
  }

  // One picture in flight at a time: a slow link shows fewer boards, never a backlog of stale ones.
  function loadNext() {
    const ins = live.pending;
    live.pending = null;
    if (!ins) return;
    live.loading = true;
    const img = new Image();
    img.onload = () => { live.loading = false; live.image = img; live.imageFor = ins; drawBoard(); loadNext(); };
    img.onerror = () => { live.loading = false; loadNext(); };
    img.src = `/api/inspections/${ins.id}/image?kind=raw&format=jpeg`;
  }

  function drawBoard() {
    const c = $("board"), ctx = c.getContext("2d");
    const ins = live.current;
    const same = ins && live.imageFor && live.imageFor.id === ins.id;
    const lagging = ins && ins.pictures && live.imageFor && !same; // the newest picture is on its way
    const img = same || lagging ? live.image : null, shownIns = same || lagging ? live.imageFor : ins;
    const f = fit(c, img ? img.naturalWidth : 1, img ? img.naturalHeight : 1);
    ctx.fillStyle = "#010409";
    ctx.fillRect(0, 0, c.width, c.height);
    if (!shownIns) return;
    if (img) {
      ctx.imageSmoothingEnabled = f.scale < 1;
      ctx.drawImage(img, f.ox, f.oy, img.naturalWidth * f.scale, img.naturalHeight * f.scale);
      const below = shownIns.verdict === "REVIEW" ? shownIns.below_threshold : [];
      shownIns.defects.forEach((d, k) => drawBox(ctx, f, d.box, CLASS_COLOURS[d.cls],
                                                 `${k + 1} ${cls(d.cls)} ${d.confidence.toFixed(2)}`, { font: 18 }));
      below.forEach((d) => drawBox(ctx, f, d.box, CLASS_COLOURS[d.cls], `? ${cls(d.cls)} ${d.confidence.toFixed(2)}`,
                                   { dashed: true, font: 18 }));
    } else {
      ctx.fillStyle = "#a9b4c0";
      ctx.font = `${Math.round(26 * f.dpr)}px ${getComputedStyle(document.body).fontFamily}`;
      ctx.textAlign = "center";
      ctx.fillText(t("no_picture"), c.width / 2, c.height / 2);
    }
    caption(shownIns);
  }

  // which board the picture is (the banner may be one board ahead of it while the picture loads)
  function caption(ins) {
    const parts = [el("span", { text: `${t("board")} ` }), el("b", { text: ins.board_id || "–" }),
                   el("span", { text: ` · ${time(ins.time)} · ${t("latency")} ${fmt(ins.latency_ms, 1)} ${t("ms")} · ` +
                                      (ins.defects.length ? t("defects_n", { n: ins.defects.length }) : t("no_defects")) })];
    $("board-caption").replaceChildren(...parts);
  }

  // -- counters ------------------------------------------------------------------------------------
  function counters() {
    const s = live.status, sh = live.shift;
    if (s) {
      $("station").textContent = s.station || "–";
      const model = (s.model || "").split("/").pop();
      $("model").textContent = `${model || s.backend || "–"} ${(s.model_sha256 || "").slice(0, 8)}`;
      const st = s.source_state || "";
      $("source-state").textContent = t(`state_${st}`) === `state_${st}` ? st : t(`state_${st}`);
      $("source-dot").className = `dot ${st === "connected" ? "ok" : st === "ended" ? "" : "warn"}`;
      $("c-rate").textContent = fmt(s.boards_per_s, 1);
      const p99 = s.p99_ms === null || s.p99_ms === undefined || !s.inspected;
      $("c-p99").replaceChildren(p99 ? "–" : fmt(s.p99_ms), ...(p99 ? [] : [el("small", { class: "unit", text: ` ${t("ms")}` })]));
      $("c-dropped").textContent = fmt(s.dropped);
    }
    if (sh) {
      const c = sh.counts;
      $("c-inspected").textContent = fmt(c.total);
      $("c-pass").textContent = fmt(c.PASS);
      $("c-fail").textContent = fmt(c.FAIL);
      $("c-review").textContent = fmt(c.REVIEW);
      $("c-error").textContent = fmt(c.ERROR);
      $("c-yield").textContent = sh.yield_pct === null ? "–" : `${fmt(sh.yield_pct, 1)}%`;
      $("shift-since").textContent = t("shift_since", { t: hhmm(sh.since) });
    }
  }

  function connection(ok) {
    live.connected = ok;
    $("conn").querySelector(".dot").className = `dot ${ok ? "ok" : "warn"}`;
    $("conn-text").textContent = ok ? t("live") : t("offline");
  }

  // -- rejects gallery (redrawn at most every 2 s, so a tile does not move under a finger) ---------
  function addRejects(rows) {
    const known = new Set(live.rejects.map((x) => x.id));
    const fresh = rows.filter((x) => !known.has(x.id));
    if (!fresh.length) return;
    live.rejects = [...fresh, ...live.rejects].slice(0, GALLERY);
    live.galleryDirty = true;
  }

  function gallery() {
    if (!live.galleryDirty) return;
    live.galleryDirty = false;
    const box = $("gallery");
    if (!live.rejects.length) {
      box.replaceChildren(el("div", { class: "empty", text: t("no_rejects") }));
      return;
    }
    const old = new Map([...box.querySelectorAll(".thumb")].map((b) => [b.dataset.id, b]));
    box.replaceChildren(...live.rejects.map((x) => old.get(x.id) || thumb(x)));
  }

  function thumb(x) {
    const label = `${x.board_id} · ${x.defects ? t("defects_n", { n: x.defects }) : x.verdict}`;
    const chipBox = el("span", { class: `chip v-${x.verdict}` }, icon(x.verdict), el("span", { class: "w", text: verdictWord(x.verdict) }));
    const b = el("button", { type: "button", class: "thumb", "data-id": x.id, "data-verdict": x.verdict, title: label,
                             onclick: () => PCB.review.open(x.id).catch((e) => PCB.toast(String(e), true)) },
      el("img", { alt: label, loading: "lazy", src: `/api/inspections/${x.id}/image?kind=annotated&size=thumb` }),
      chipBox, el("span", { class: "id", text: x.board_id }));
    return b;
  }

  function relabelGallery() {
    for (const b of document.querySelectorAll(".thumb")) {
      const w = b.querySelector(".chip .w");
      if (w) w.textContent = verdictWord(b.dataset.verdict);
    }
    if (!live.rejects.length) $("gallery").replaceChildren(el("div", { class: "empty", text: t("no_rejects") }));
  }

  // -- charts --------------------------------------------------------------------------------------
  async function loadCharts() {
    try {
      live.charts = await getJSON("/api/shift");
    } catch (e) {
      return;
    }
    drawCharts();
  }

  function drawCharts() {
    const sh = live.charts;
    $("pareto-recent").textContent = t("last_n", { n: sh ? sh.recent_boards : 0 });
    if (!sh) return;
    PCB.charts.pareto($("pareto"), live.pareto === "shift" ? sh.pareto_shift : sh.pareto_recent);
    PCB.charts.trend($("trend"), sh.trend);
  }

  function setPareto(scope) {
    live.pareto = scope;
    $("pareto-shift").classList.toggle("on", scope === "shift");
    $("pareto-recent").classList.toggle("on", scope === "recent");
    drawCharts();
  }

  // -- the stream ----------------------------------------------------------------------------------
  function onEvent(d) {
    live.status = d.status;
    live.shift = d.shift;
    counters();
    if (d.inspection && (!live.current || d.inspection.id !== live.current.id)) show(d.inspection);
    if (d.rejects && d.rejects.length) addRejects(d.rejects);
  }

  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("inspection", (e) => onEvent(JSON.parse(e.data)));
    es.onopen = () => connection(true);
    es.onerror = () => connection(false);
  }

  async function loadRejects() {
    try {
      const rows = await getJSON(`/api/inspections?verdict=rejects&limit=${GALLERY}`);
      addRejects(rows.map((i) => ({ id: i.id, board_id: i.board_id, verdict: i.verdict, defects: i.defects.length })));
    } catch (e) { /* shown as empty; the stream fills it */ }
  }

  function signInButton() {
    $("who").textContent = state.token ? state.operator : t("sign_in");
  }

  function relabel() {
    $("lang").textContent = t("switch_to");
    $("lang").setAttribute("lang", state.lang === "zh" ? "en" : "zh");
    signInButton();
    banner();
    counters();
    connection(live.connected);
    relabelGallery();
    drawCharts();
    drawBoard();
  }

  async function boot() {
    state.i18n = await (await fetch("/ui/i18n.json")).json();
    const saved = localStorage.getItem("pcb.lang");
    state.lang = saved || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
    for (const e of document.querySelectorAll("[data-icon]")) e.replaceChildren(icon(e.dataset.icon));
    state.onLang.push(relabel);
    PCB.review.wire();
    PCB.applyLang();
    $("lang").addEventListener("click", () => PCB.setLang(state.lang === "zh" ? "en" : "zh"));
    $("signin").addEventListener("click", async () => {
      if (state.token) PCB.remember("", ""); else await PCB.review.signIn();
    });
    $("pareto-shift").addEventListener("click", () => setPareto("shift"));
    $("pareto-recent").addEventListener("click", () => setPareto("recent"));
    window.addEventListener("resize", () => { drawBoard(); drawCharts(); });
    state.config = await getJSON("/api/config");
    if (!state.config.reader && !state.token) {
      while (!(await PCB.review.signIn(t("need_sign_in_to_view")))) { /* the page is useless until then */ }
    }
    connect();
    await loadRejects();
    gallery();
    loadCharts();
    setInterval(gallery, 2000);
    setInterval(loadCharts, 5000);
  }

  document.addEventListener("DOMContentLoaded", () => boot().catch((e) => PCB.toast(String(e), true)));
})();
