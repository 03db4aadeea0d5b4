// One board, full size: its defects (confirm / false call / other class), boxes the model missed, and the
// template beside it; feedback goes to the station with the token the operator typed once (sign-in dialog).
"use strict";
PCB.review = (() => {
  const { state, t, cls, el, chip, headers, getJSON, errorText, time, fit, drawBox, CLASS_COLOURS } = PCB;
  const $ = (id) => document.getElementById(id);
  const CHOICES = [["confirmed", "✓"], ["false_call", "✕"], ["other_class", "↻"]];
  let r = null; // the board under review

  // -- sign in ----------------------------------------------------------------------------------------
  let signInDone = null;

  function signIn(message) {
    $("f-operator").value = state.operator || "";
    $("f-token").value = "";
    setMessage($("f-message"), message || "", true);
    $("signin-dialog").hidden = false;
    (state.operator ? $("f-token") : $("f-operator")).focus();
    return new Promise((resolve) => { signInDone = resolve; });
  }

  function closeSignIn(ok) {
    $("signin-dialog").hidden = true;
    if (signInDone) signInDone(ok);
    signInDone = null;
  }

  async function submitSignIn(ev) {
    ev.preventDefault();
    const operator = $("f-operator").value.trim(), token = $("f-token").value.trim();
    if (!operator || !token) return;
    const resp = await fetch("/api/session", { method: "POST", credentials: "same-origin",
                                                headers: { Authorization: `Bearer ${token}` } });
    $("f-token").value = "";
    if (resp.ok) {
      PCB.remember(operator, token);
      closeSignIn(true);
    } else if (resp.status === 403) {
      setMessage($("f-message"), t("no_token_configured"), true);
    } else if (resp.status === 401) {
      setMessage($("f-message"), t("wrong_token"), true);
    } else {
      setMessage($("f-message"), await errorText(resp), true);
    }
  }

  function setMessage(box, text, bad) {
    box.textContent = text;
    box.className = `message ${text ? (bad ? "bad" : "good") : ""}`;
  }

  // -- the review sheet -------------------------------------------------------------------------------
  async function open(id) {
    const d = await getJSON(`/api/inspections/${id}`);
    const ins = d.inspection;
    const shown = ins.defects.map((x, k) => ({ ref: k, d: x, below: false, judgement: "confirmed", cls: null }));
    if (ins.verdict === "REVIEW") {
      ins.below_threshold.forEach((x, k) => shown.push({ ref: ins.defects.length + k, d: x, below: true,
                                                          judgement: "false_call", cls: null }));
    }
    r = { id, ins, pictures: d.pictures, feedback: d.feedback, items: shown, added: [], sel: -1,
          image: null, template: null, drawing: false, drag: null, f: null };
    const last = d.feedback[d.feedback.length - 1];
    if (last) prefill(last);
    $("review").hidden = false;
    setMessage($("r-message"), "", false);
    render();
    load("raw", (img) => { r.image = img; drawBoard(); });
    load("template", (img) => { r.template = img; drawTemplate(); });
    drawTemplate();
  }

  function prefill(last) {
    for (const item of last.items) {
      if (item.judgement === "added") r.added.push({ cls: item.cls, box: item.box });
      const mine = r.items.find((x) => x.ref === item.defect_seq);
      if (mine) Object.assign(mine, { judgement: item.judgement, cls: item.judgement === "other_class" ? item.cls : null });
    }
  }

  function load(kind, done) {
    if (!r.pictures[kind]) return;
    const id = r.id, img = new Image();
    img.onload = () => { if (r && r.id === id) done(img); };
    img.src = `/api/inspections/${id}/image?kind=${kind}`;
  }

  function close() {
    $("review").hidden = true;
    $("r-picker").hidden = true;
    r = null;
  }

  function render() {
    if (!r) return;
    const ins = r.ins;
    $("r-verdict").replaceWith(Object.assign(chip(ins.verdict), { id: "r-verdict" }));
    $("r-title").textContent = `${t("board")} ${ins.board_id || "–"} · ${time(ins.time)} · ` +
      (ins.defects.length ? t("defects_n", { n: ins.defects.length }) : t("no_defects"));
    const last = r.feedback[r.feedback.length - 1];
    $("r-last").textContent = last ? t("last_feedback", { who: last.operator, when: time(last.time) }) : "";
    const list = $("r-list");
    list.replaceChildren(...r.items.map(itemRow), ...r.added.map(addedRow));
    drawBoard();
  }

  function itemRow(item, k) {
    const d = item.d, colour = CLASS_COLOURS[d.cls];
    const num = el("span", { class: "num", text: String(k + 1) });
    num.style.background = colour;
    const row = el("li", { class: `item${r.sel === k ? " sel" : ""}`, "data-ref": item.ref },
      el("div", { class: "name" }, num, el("span", { text: cls(d.cls) }),
         el("small", { text: `${d.confidence.toFixed(2)} · [${d.box.join(", ")}]${item.below ? ` · ${t("below_threshold")}` : ""}` })),
      el("div", { class: "choices" }, ...CHOICES.map(([kind, sym]) => el("button", {
        type: "button", class: `choice ${kind}${item.judgement === kind ? " on" : ""}`, "data-choice": kind,
        "aria-pressed": String(item.judgement === kind),
        onclick: () => { item.judgement = kind; if (kind !== "other_class") item.cls = null; r.sel = k; render(); },
      }, el("span", { class: "sym", text: sym }), el("span", { text: t(kind) })))));
    row.style.borderLeftColor = colour;
    if (item.judgement === "other_class") {
      row.append(el("div", { class: "classes" }, ...state.config.classes.filter((c) => c !== d.cls).map((c) =>
        el("button", { type: "button", class: item.cls === c ? "on" : "", text: cls(c),
                       onclick: () => { item.cls = c; render(); } }))));
    }
    return row;
  }

  function addedRow(a, k) {
    const row = el("li", { class: "item" },
      el("div", { class: "name" }, el("span", { text: `＋ ${cls(a.cls)}` }), el("small", { text: `${t("added")} · [${a.box.join(", ")}]` })),
      el("div", { class: "choices" }, el("button", { type: "button", class: "choice", onclick: () => { r.added.splice(k, 1); render(); } },
        el("span", { class: "sym", text: "🗑" }), el("span", { text: t("remove") }))));
    row.style.borderLeftColor = "#ffffff";
    return row;
  }

  function drawBoard() {
    if (!r) return;
    const c = $("r-board"), ctx = c.getContext("2d");
    const w = r.image ? r.image.naturalWidth : 1, h = r.image ? r.image.naturalHeight : 1;
    r.f = fit(c, w, h);
    ctx.fillStyle = "#010409";
    ctx.fillRect(0, 0, c.width, c.height);
    if (!r.image) return;
    ctx.imageSmoothingEnabled = r.f.scale < 1;
    ctx.drawImage(r.image, r.f.ox, r.f.oy, w * r.f.scale, h * r.f.scale);
    r.items.forEach((item, k) => {
      const off = item.judgement === "false_call";
      const name = item.judgement === "other_class" && item.cls ? `${cls(item.d.cls)}→${cls(item.cls)}` : cls(item.d.cls);
      drawBox(ctx, r.f, item.d.box, off ? "#8b949e" : CLASS_COLOURS[item.cls || item.d.cls],
              `${k + 1} ${off ? t("false_call") : name}`, { bold: r.sel === k, dashed: off || item.below, cross: off });
    });
    r.added.forEach((a) => drawBox(ctx, r.f, a.box, "#ffffff", `＋ ${cls(a.cls)}`, { dashed: true }));
    if (r.drag) {
      const [x1, y1, x2, y2] = r.drag;
      drawBox(ctx, r.f, [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)], "#e3a008", "", { dashed: true });
    }
  }

  function drawTemplate() {
    if (!r) return;
    const c = $("r-template"), ctx = c.getContext("2d");
    const img = r.template, f = fit(c, img ? img.naturalWidth : 1, img ? img.naturalHeight : 1);
    ctx.fillStyle = "#010409";
    ctx.fillRect(0, 0, c.width, c.height);
    if (img) {
      ctx.drawImage(img, f.ox, f.oy, img.naturalWidth * f.scale, img.naturalHeight * f.scale);
    } else if (!r.pictures.template) {
      ctx.fillStyle = "#a9b4c0";
      ctx.font = `${Math.round(20 * f.dpr)}px sans-serif`;
      ctx.textAlign = "center";
      ctx.fillText(t("template_missing"), c.width / 2, c.height / 2);
    }
  }

  // -- drawing a missed defect -------------------------------------------------------------------------
  function toImage(ev) {
    const b = $("r-board").getBoundingClientRect(), f = r.f;
    const x = ((ev.clientX - b.left) * f.dpr - f.ox) / f.scale, y = ((ev.clientY - b.top) * f.dpr - f.oy) / f.scale;
    const w = r.image.naturalWidth, h = r.image.naturalHeight;
    return [Math.max(0, Math.min(w, Math.round(x))), Math.max(0, Math.min(h, Math.round(y)))];
  }

  function setDrawing(on) {
    if (!r || !r.image) return;
    r.drawing = on;
    $("r-board").classList.toggle("drawing", on);
    $("r-drawing").hidden = !on;
  }

  function pointerDown(ev) {
    if (!r || !r.drawing) return;
    $("r-board").setPointerCapture(ev.pointerId);
    const [x, y] = toImage(ev);
    r.drag = [x, y, x, y];
  }

  function pointerMove(ev) {
    if (!r || !r.drag) return;
    const [x, y] = toImage(ev);
    r.drag[2] = x;
    r.drag[3] = y;
    drawBoard();
  }

  function pointerUp() {
    if (!r || !r.drag) return;
    const [x1, y1, x2, y2] = r.drag;
    r.drag = null;
    const box = [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
    setDrawing(false);
    if (box[2] - box[0] < 3 || box[3] - box[1] < 3) return drawBoard();
    pick((c) => { r.added.push({ cls: c, box }); render(); });
  }

  function pick(done) {
    const buttons = $("r-picker-buttons");
    buttons.replaceChildren(...state.config.classes.map((c) => {
      const b = el("button", { type: "button", text: cls(c), onclick: () => { $("r-picker").hidden = true; done(c); } });
      b.style.borderColor = CLASS_COLOURS[c];
      return b;
    }));
    $("r-picker").hidden = false;
  }

  // -- sending -----------------------------------------------------------------------------------------
  async function send() {
    if (!r) return;
    if (r.items.some((x) => x.judgement === "other_class" && !x.cls)) {
      return setMessage($("r-message"), `${t("other_class")}: ${t("pick_class")}`, true);
    }
    if (!state.token && !(await signIn())) return;
    const body = {
      operator: state.operator,
      judgements: r.items.map((x) => ({ ref: x.ref, judgement: x.judgement, cls: x.judgement === "other_class" ? x.cls : null })),
      added: r.added.map((a) => ({ cls: a.cls, box: a.box })),
      note: "",
    };
    const url = `/api/inspections/${r.id}/feedback`;
    const post = () => fetch(url, { method: "POST", credentials: "same-origin",
                                    headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
    $("r-send").disabled = true;
    try {
      let resp = await post();
      if (resp.status === 401) {
        PCB.remember(state.operator, "");
        if (!(await signIn(t("wrong_token")))) return;
        body.operator = state.operator;
        resp = await post();
      }
      if (!resp.ok) {
        const why = resp.status === 403 ? t("no_token_configured") : await errorText(resp);
        return setMessage($("r-message"), t("send_failed", { why }), true);
      }
      const saved = await resp.json();
      if (!r) return;
      r.feedback.push(saved);
      const text = saved.images ? t("sent") : t("sent_no_images");
      setMessage($("r-message"), text, !saved.images);
      render();
    } finally {
      $("r-send").disabled = false;
    }
  }

  function boardOk() {
    if (!r) return;
    r.items.forEach((x) => { x.judgement = "false_call"; x.cls = null; });
    r.added = [];
    render();
    send();
  }

  function hitTest(ev) {
    if (!r || r.drawing || !r.f || !r.image) return;
    const [x, y] = toImage(ev);
    const k = r.items.findIndex((it) => x >= it.d.box[0] - 6 && x <= it.d.box[2] + 6 && y >= it.d.box[1] - 6 && y <= it.d.box[3] + 6);
    if (k < 0) return;
    r.sel = k;
    render();
    const row = $("r-list").children[k];
    if (row) row.scrollIntoView({ block: "nearest" });
  }

  function wire() {
    $("r-close").addEventListener("click", close);
    $("r-send").addEventListener("click", send);
    $("r-board-ok").addEventListener("click", boardOk);
    $("r-add").addEventListener("click", () => setDrawing(!(r && r.drawing)));
    $("r-picker-cancel").addEventListener("click", () => { $("r-picker").hidden = true; drawBoard(); });
    const c = $("r-board");
    c.addEventListener("pointerdown", pointerDown);
    c.addEventListener("pointermove", pointerMove);
    c.addEventListener("pointerup", pointerUp);
    c.addEventListener("click", hitTest);
    $("signin-form").addEventListener("submit", submitSignIn);
    $("f-cancel").addEventListener("click", () => closeSignIn(false));
    document.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape") return;
      if (!$("signin-dialog").hidden) closeSignIn(false);
      else if (!$("r-picker").hidden) $("r-picker").hidden = true;
      else if (r) close();
    });
    window.addEventListener("resize", () => { drawBoard(); drawTemplate(); });
    state.onLang.push(render);
  }

  return { open, close, signIn, wire, redraw: () => { drawBoard(); drawTemplate(); } };
})();
