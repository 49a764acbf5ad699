/* washfin dashboard: asks for an API key once (sessionStorage, never the URL), reads GET /reports/dashboard
 * with it in the X-API-Key header, and draws the figures of the key's cooperative or programme.
 * Labels come from i18n.js; charts from charts.js. No other dependency, nothing fetched from elsewhere. */
"use strict";

(function () {
  const KEY_STORE = "washfin.dashboard.apiKey";   // sessionStorage: gone when the tab closes
  const LANG_STORE = "washfin.dashboard.lang";    // localStorage: the reader's language choice
  const API = "/reports/dashboard";
  const DICT = window.WF_I18N;
  const C = window.WFCharts;

  // server-side exports: filled from the reporting API's OpenAPI document when it offers them (see discoverExports)
  let serverExports = [];

  const COLORS = {
    water: { safely_managed: "#08519c", basic: "#4a9fd8", limited: "#f2c14e", unimproved: "#e8893a", surface_water: "#b3362c" },
    sanitation: { safely_managed: "#1d6b3a", basic: "#6bbf6f", limited: "#f2c14e", unimproved: "#e8893a", open_defecation: "#b3362c" },
    disbursed: "#1f5fa8", repaid: "#e08a00", par: "#b3362c", due: "#e08a00", done: "#1f5fa8",
    target: "#1d6b3a", flow: "#5b4b9a",
  };
  const RUNGS = {
    water: ["safely_managed", "basic", "limited", "unimproved", "surface_water"],
    sanitation: ["safely_managed", "basic", "limited", "unimproved", "open_defecation"],
  };
  const HEADLINE = [
    ["members", "int"], ["households", "int"], ["people_reached", "int"], ["women_pct", "pct"],
    ["b40_pct", "pct"], ["urban_pct", "pct"], ["safely_managed_sanitation_households", "int"],
  ];
  const FINANCING = [
    ["applied", "int"], ["approved", "int"], ["disbursed_count", "int"], ["disbursed_value", "money"],
    ["outstanding", "money"], ["par1_pct", "pct"], ["par30_pct", "pct"], ["par90_pct", "pct"],
    ["repayment_rate_pct", "rate"], ["social_fund_imposed", "money"], ["social_fund_received", "money"],
    ["social_fund_outstanding", "money"],
  ];
  const DESLUDGING = [["due", "int"], ["overdue", "int"], ["emptied", "int"], ["emptyings_in_window", "int"],
    ["m3_removed", "m3"], ["m3_acknowledged", "m3"]];
  const FLOW = ["contained", "emptied", "delivered", "treated"];

  const $ = (id) => document.getElementById(id);
  let lang = pickLanguage();
  let data = null;
  /** The window width the charts were last drawn for (a resize redraws when the window is not that wide). */
  let drawnWidth = 0;
  let asOf = new URLSearchParams(location.search).get("as_of") || "";

  function pickLanguage() {
    let stored = null;
    try { stored = localStorage.getItem(LANG_STORE); } catch (e) { /* storage may be disabled */ }
    return stored && DICT[stored] ? stored : "id";
  }

  /** The label for key in the current language, with {name} placeholders filled. */
  function t(key, vars) {
    let text = DICT[lang][key];
    if (text === undefined) text = DICT.id[key];
    if (text === undefined) text = humanize(key.split(".").pop());
    for (const [k, v] of Object.entries(vars || {})) text = text.split(`{${k}}`).join(String(v));
    return text;
  }
  function humanize(raw) {
    const s = String(raw).replace(/[_-]+/g, " ").trim();
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  const tOr = (key, raw) => (DICT[lang][key] !== undefined ? DICT[lang][key] : humanize(raw));

  // ---- number and date formatting: id-ID ("Rp 1.234.567", "45,5%") or en-GB ("Rp 1,234,567", "45.5%")
  const locale = () => t("locale");
  const nf = (min, max) => new Intl.NumberFormat(locale(), { minimumFractionDigits: min, maximumFractionDigits: max });
  const isNum = (v) => typeof v === "number" && isFinite(v);
  const fmt = {
    int: (v) => (isNum(v) ? nf(0, 0).format(v) : t("na")),
    money: (v) => (isNum(v) ? `Rp ${nf(0, 0).format(v)}` : t("na")),
    pct: (v) => (isNum(v) ? `${nf(1, 1).format(v)}%` : t("na")),
    // the repayment rate: null when nothing fell due in the period (not applicable, never 100 %)
    rate: (v) => (isNum(v) ? `${nf(1, 1).format(v)}%` : t("not_applicable")),
    dec: (v) => (isNum(v) ? nf(0, 1).format(v) : t("na")),
    m3: (v) => (isNum(v) ? t("unit.m3", { n: nf(0, 1).format(v) }) : t("na")),
    days: (v) => (isNum(v) ? t("unit.days", { n: nf(0, 1).format(v) }) : t("na")),
    compactMoney: (v) => `Rp ${new Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 }).format(v)}`,
    date: (iso) => (iso ? new Intl.DateTimeFormat(locale(), { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" })
      .format(new Date(`${iso}T00:00:00Z`)) : t("na")),
    dateTime: (iso) => new Intl.DateTimeFormat(locale(), { day: "numeric", month: "short", year: "numeric", hour: "2-digit",
      minute: "2-digit", timeZone: "Asia/Jakarta", timeZoneName: "short" }).format(new Date(iso)),
    month: (ym, first) => {
      const d = new Date(`${ym}-01T00:00:00Z`);
      const m = new Intl.DateTimeFormat(locale(), { month: "short", timeZone: "UTC" }).format(d).replace(".", "");
      return first || d.getUTCMonth() === 0 ? `${m}\n${d.getUTCFullYear()}` : m;
    },
  };
  const format = (kind, v) => fmt[kind](v);

  /** Today in Jakarta (the API's default as-of date), as YYYY-MM-DD. */
  function jakartaToday() {
    return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Jakarta", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  }

  // ---- small DOM helpers
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v); else node.setAttribute(k, String(v));
    }
    for (const c of children || []) if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }
  /** The inner width a chart drawn into this box may use, in CSS pixels (a box not laid out yet, or hidden,
   * has none: then the viewport's, never wider than a desktop chart, so no chart is drawn wider than a phone). */
  const widthOf = (id) => $(id).clientWidth || Math.min(720, document.documentElement.clientWidth || 720);
  function fill(id, ...nodes) { const box = $(id); box.replaceChildren(...nodes.filter(Boolean)); return box; }
  function setState(state) { document.body.dataset.state = state; }

  /** A two-column table (indicator, value) whose value cells carry the raw number for checks and copy. */
  function valueTable(caption, section, rows, marks) {
    return el("table", { class: "data values" }, [
      el("caption", { class: "visually-hidden", text: caption }),
      el("thead", {}, [el("tr", {}, [el("th", { scope: "col", text: t("table.indicator") }),
        el("th", { scope: "col", class: "num", text: t("table.value") })])]),
      el("tbody", {}, rows.map(([key, label, kind, value]) => el("tr", {}, [
        el("th", { scope: "row" }, [label, (marks || {})[key] && el("sup", { class: "note-mark", text: marks[key] })]),
        el("td", { class: "num", "data-field": `${section}.${key}`, "data-value": value ?? "", text: format(kind, value) }),
      ]))),
    ]);
  }

  // ---- static labels and language
  function applyLabels() {
    document.documentElement.lang = lang;
    document.title = t("app.title");
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll(".lang-switch button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
  }

  function setLanguage(next) {
    if (!DICT[next]) return;
    lang = next;
    try { localStorage.setItem(LANG_STORE, next); } catch (e) { /* keep the choice for this page only */ }
    applyLabels();
    if (data) render(data);
  }

  // ---- the API key
  function storedKey() { try { return sessionStorage.getItem(KEY_STORE); } catch (e) { return null; } }
  function forgetKey() {
    tableNames = null;
    try { sessionStorage.removeItem(KEY_STORE); } catch (e) { /* nothing kept */ }
  }

  function askForKey(message) {
    data = null;
    $("dashboard").hidden = true;
    $("alert").hidden = true;
    $("change-key").hidden = true;
    $("status").textContent = "";
    $("key-panel").hidden = false;
    $("key-error").textContent = message || "";
    setState(message ? "key-rejected" : "key");
    $("api-key").value = "";
    $("api-key").focus();
  }

  function onKeySubmit(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) { $("key-error").textContent = t("key.required"); return; }
    try { sessionStorage.setItem(KEY_STORE, key); } catch (e) { /* then ask again next time */ }
    $("api-key").value = "";
    $("key-panel").hidden = true;
    load();
  }

  function showError(message) {
    $("status").textContent = "";
    $("alert-text").textContent = message;
    $("alert").hidden = false;
    setState("error");
  }

  // ---- loading
  let loadSeq = 0;  // only the latest request may draw (the date can change while one is under way)

  async function load() {
    const key = storedKey();
    if (!key) { askForKey(); return; }
    const seq = ++loadSeq;
    const stale = () => seq !== loadSeq;
    $("alert").hidden = true;
    $("status").textContent = t("state.loading");
    setState("loading");
    const url = asOf ? `${API}?as_of=${encodeURIComponent(asOf)}` : API;
    let response;
    try {
      response = await fetch(url, { headers: { "X-API-Key": key, Accept: "application/json" }, cache: "no-store", credentials: "omit" });
    } catch (e) {
      if (!stale()) failed(t("state.network"));
      return;
    }
    if (stale()) return;
    if (response.status === 401) { forgetKey(); askForKey(t("key.rejected")); return; }
    $("change-key").hidden = false;
    if (response.status === 403) { failed(t("state.forbidden")); return; }
    if (response.status === 404) { failed(t("state.not_found")); return; }
    if (response.status === 422) {
      const body = await response.json().catch(() => ({}));
      if (stale()) return;
      const reason = body.reason || (body.errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ") || response.statusText;
      // e.g. a date in the future: keep the figures shown, and the picker on the date they are for
      if (data) { asOf = data.as_of; $("as-of").value = data.as_of; }
      showError(t("state.invalid", { reason }));
      return;
    }
    if (!response.ok) { failed(t("state.server", { status: response.status })); return; }
    let body;
    try {
      body = await response.json();
    } catch (e) {
      if (!stale()) failed(t("state.server", { status: response.status }));
      return;
    }
    await loadTableNames();
    if (stale()) return;
    data = body;
    $("status").textContent = "";
    try {
      render(data);
    } catch (e) {
      // a response this page cannot draw: say so instead of leaving a half-drawn page
      failed(t("state.render", { reason: e.message }));
      return;
    }
    setState("ready");
  }

  /** An answer without figures: no stale figures stay on screen beside the message. */
  function failed(message) {
    data = null;
    $("dashboard").hidden = true;
    showError(message);
  }

  // ---- rendering
  function render(d) {
    drawnWidth = window.innerWidth;
    $("dashboard").hidden = false;
    const scope = d.scope || {};
    $("scope-kind").textContent = t(scope.kind === "programme" ? "scope.programme" : "scope.cooperative");
    $("scope-name").textContent = scope.name || scope.id || "";
    // a programme names itself and counts its cooperatives; their names are in the table below, never here
    const coops = scope.cooperatives || [];
    $("scope-members").textContent = scope.kind !== "programme" ? t("asof.shown", { date: fmt.date(d.as_of) })
      : coops.length ? tn("scope.count", coops.length) : t("scope.no_cooperatives");
    document.title = `${scope.name || scope.id || ""} · ${t("app.title")}`;
    const picker = $("as-of");
    picker.max = jakartaToday();
    picker.value = d.as_of || asOf;

    renderFreshness(d.freshness || {}, scope);
    renderExports(d);
    renderHeadline(d.headline || {});
    // programme figures leave out the members who did not consent to programme reporting: said under them
    notes("headline-notes", [scope.kind === "programme" && ["consent", t("note.consent")]]);
    renderTargets(d.targets || [], d);
    renderLadder(d.access_ladder || {});
    renderMonthly(d.monthly || []);
    renderFinancing(d.financing || {});
    renderDesludgingChartNote(d.desludging || {});
    renderConstruction(d.construction || {});
    renderDesludging(d.desludging || {});
    renderByCooperative(d);
  }

  /** How long ago an instant was, in words ("5 minutes ago"), and the whole seconds it stands for. */
  function ago(iso) {
    const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    const words = seconds < 60 ? t("fresh.ago.now")
      : seconds < 3600 ? tn("fresh.ago.minutes", Math.floor(seconds / 60))
        : seconds < 86400 ? tn("fresh.ago.hours", Math.floor(seconds / 3600))
          : tn("fresh.ago.days", Math.floor(seconds / 86400));
    return { words, seconds };
  }

  /** The freshness panel in words: when the figures last changed, whether every event is counted, and
   * that both are the scope's own (the API counts the caller's cooperatives' events only). */
  function renderFreshness(f, scope) {
    const lag = isNum(f.lag_events) ? f.lag_events : null;
    const when = f.last_event_at ? ago(f.last_event_at) : null;
    const badge = el("span", { class: `badge ${lag === 0 ? "ok" : "warn"}`, text: t(lag === 0 ? "fresh.up_to_date" : "fresh.behind") });
    const state = lag === 0 ? t("fresh.up_to_date_text") : lag === null ? t("fresh.behind_unknown") : tn("fresh.behind_text", lag);
    const coops = (scope.cooperatives || []).length;
    fill("freshness",
      el("div", {}, [el("dt", { text: t("fresh.last_event") }),
        el("dd", { "data-field": "freshness.last_event_at", "data-value": f.last_event_at || "",
          "data-age-seconds": when ? when.seconds : "",
          text: when ? t("fresh.when", { ago: when.words, date: fmt.dateTime(f.last_event_at) }) : t("fresh.none") })]),
      el("div", {}, [el("dt", { text: t("fresh.state") }),
        el("dd", { "data-field": "freshness.lag_events", "data-value": lag ?? "" }, [badge, " ", el("span", { class: "state-text", text: state })])]),
      el("p", { class: "help fresh-scope", "data-footnote": "freshness-scope",
        text: scope.kind === "programme" ? tn("fresh.scope_programme", coops) : t("fresh.scope_cooperative") }));
  }

  /** Notes under a panel: one list item per note, each with a key for tests and links. */
  function notes(id, items) {
    const box = $(id);
    const shown = items.filter(Boolean);
    box.hidden = shown.length === 0;
    box.replaceChildren(...shown.map(([key, text, extra]) => el("li", { "data-footnote": key, ...(extra || {}), text })));
  }

  function renderHeadline(h) {
    fill("headline", ...HEADLINE.map(([key, kind]) => el("div", { class: "card" }, [
      el("dt", { text: t(`headline.${key}`) }),
      el("dd", { "data-field": `headline.${key}`, "data-value": h[key] ?? "", text: format(kind, h[key]) }),
    ])));
  }

  /** The name of a cooperative of this scope (the by-cooperative rows name them). */
  function nameOf(d, id) {
    if ((d.scope || {}).kind === "cooperative" && d.scope.id === id) return d.scope.name || id;
    const row = (d.by_cooperative || []).find((x) => coopId(x) === id);
    return row ? coopName(row) : id;
  }

  function renderTargets(targets, d) {
    // which cooperatives a target covers: a programme's target is the sum of the ones its cooperatives set,
    // and its progress counts only them (the headline counts every cooperative)
    const scope = d.scope || {};
    const all = scope.cooperatives || [];
    const indicatorName = (tg) => tOr(`indicator.${tg.indicator}`, tg.indicator);
    notes("targets-notes", !targets.length ? [] : scope.kind !== "programme" ? [["target-own", t("note.target_own")]]
      : targets.map((tg) => {
        const covers = tg.cooperatives || [];
        const some = covers.length < all.length;
        return [some ? "target-some" : "target-all", t(some ? "note.target_some" : "note.target_all", {
          indicator: indicatorName(tg), count: fmt.int(covers.length), total: fmt.int(all.length),
          names: covers.map((id) => nameOf(d, id)).join(", ") }), { "data-indicator": tg.indicator }];
      }));
    if (!targets.length) { fill("targets", el("p", { class: "muted", text: t("targets.none") })); return; }
    const items = targets.map((tg, i) => ({
      key: tg.indicator || String(i),
      label: tg.due_on ? `${tOr(`indicator.${tg.indicator}`, tg.indicator)} (${t("targets.due", { date: fmt.date(tg.due_on) })})`
        : tOr(`indicator.${tg.indicator}`, tg.indicator),
      value: tg.progress_pct,
      text: `${t("targets.of", { actual: fmt.int(tg.actual), target: fmt.int(tg.target) })} · ${fmt.pct(tg.progress_pct)}`,
    }));
    fill("targets", C.progressBars({ width: widthOf("targets"), key: "targets", label: t("targets.chart"), items, max: 100, color: COLORS.target,
      format: fmt.pct, showData: t("chart.show_data"), headings: [t("table.indicator"), t("table.value")] }));
  }

  function renderLadder(ladder) {
    for (const service of ["water", "sanitation"]) {
      const l = ladder[service] || {};
      fill(`ladder-${service}`, C.stackedBars({
        width: widthOf(`ladder-${service}`),
        key: `ladder-${service}`,
        label: t("ladder.chart", { service: t(`ladder.${service}`) }),
        rows: [{ key: "baseline", label: t("ladder.baseline"), values: l.baseline || {} },
          { key: "now", label: t("ladder.now"), values: l.now || {} }],
        parts: RUNGS[service].map((r) => ({ key: r, label: t(`rung.${r}`), color: COLORS[service][r] })),
        format: fmt.int, percent: fmt.pct, partHeading: t("table.indicator"),
        showData: t("chart.show_data"), empty: t("chart.empty"),
      }));
    }
  }

  function renderMonthly(monthly) {
    const categories = monthly.map((m, i) => ({ key: m.month, label: fmt.month(m.month, i === 0) }));
    const common = { categories, categoryHeading: t("monthly.month"), showData: t("chart.show_data"), empty: t("chart.empty") };
    const series = (key, color) => ({ key, label: t(`monthly.${key}`), color, values: monthly.map((m) => m[key] || 0) });
    fill("chart-money", C.groupedBars({ ...common, width: widthOf("chart-money"), key: "money", label: t("monthly.money_chart"),
      series: [series("disbursed", COLORS.disbursed), series("repaid", COLORS.repaid)],
      format: fmt.money, axisFormat: fmt.compactMoney }));
    fill("chart-par", C.lineChart({ ...common, width: widthOf("chart-par"), key: "par30", label: t("monthly.par_chart"), minTop: 5,
      series: [series("par30_pct", COLORS.par)], format: fmt.pct, axisFormat: (v) => `${fmt.dec(v)}%` }));
    fill("chart-desludging", C.groupedBars({ ...common, width: widthOf("chart-desludging"), key: "desludging", label: t("monthly.desludging_chart"),
      series: [series("desludging_due", COLORS.due), series("desludging_done", COLORS.done)],
      format: fmt.int, axisFormat: fmt.int, integer: true }));
  }

  function renderFinancing(f) {
    fill("financing", valueTable(t("financing.heading"), "financing",
      FINANCING.map(([key, kind]) => [key, t(`financing.${key}`), kind, f[key]]), { outstanding: "1" }));
    // outstanding principal counts a signed contract at its full cost before it is disbursed: said, with
    // the difference when it shows
    const more = isNum(f.outstanding) && isNum(f.disbursed_value) && f.outstanding > f.disbursed_value
      ? ` ${t("note.outstanding_more", { amount: fmt.money(f.outstanding - f.disbursed_value) })}` : "";
    notes("financing-notes", [["outstanding", `¹ ${t("note.outstanding")}${more}`]]);
  }

  /** The desludging chart says why its "done" bars are empty when the table counts emptied tanks. */
  function renderDesludgingChartNote(dl) {
    notes("desludging-chart-notes", [dl.emptyings_in_window === 0 && dl.last_emptied_on
      && ["desludging-none", t("note.desludging_none", { date: fmt.date(dl.last_emptied_on) })]]);
  }

  function renderConstruction(c) {
    const byStatus = c.by_status || {};
    const statusTable = el("table", { class: "data values" }, [
      el("caption", { text: t("construction.by_status") }),
      el("thead", {}, [el("tr", {}, [el("th", { scope: "col", text: t("construction.status") }),
        el("th", { scope: "col", class: "num", text: t("construction.jobs") })])]),
      el("tbody", {}, Object.entries(byStatus).map(([status, n]) => el("tr", {}, [
        el("th", { scope: "row", text: tOr(`status.${status}`, status) }),
        el("td", { class: "num", "data-field": `construction.by_status.${status}`, "data-value": n, text: fmt.int(n) }),
      ]))),
    ]);
    fill("construction",
      valueTable(t("construction.heading"), "construction", [
        ["first_time_pass_rate_pct", t("construction.first_time_pass_rate_pct"), "pct", c.first_time_pass_rate_pct],
        ["median_days_order_to_handover", t("construction.median_days_order_to_handover"), "days", c.median_days_order_to_handover],
      ]),
      Object.keys(byStatus).length ? statusTable : null);
  }

  function renderDesludging(dl) {
    const flow = dl.sludge_flow_pct || {};
    const flowWidth = widthOf("desludging");
    fill("desludging",
      valueTable(t("desludging.heading"), "desludging", DESLUDGING.map(([key, kind]) => [key, t(`desludging.${key}`), kind, dl[key]])),
      el("h3", { text: t("desludging.sludge_flow") }),
      C.progressBars({ width: flowWidth, key: "sludge-flow", label: t("desludging.sludge_flow_chart"), max: 100, color: COLORS.flow,
        items: FLOW.map((k) => ({ key: k, label: t(`flow.${k}`), value: flow[k] })),
        format: fmt.pct, showData: t("chart.show_data"), headings: [t("table.indicator"), t("table.value")] }));
  }

  // ---- programme scope: the cooperatives as rows (one per cooperative), the indicators as columns
  // A group switch picks the columns (a summary, or one section's indicators) so the table fits its panel;
  // the programme total is pinned first; the rows sort by any column, filter by name, and come 20 a page.
  const PAGE_SIZE = 20;
  const COLUMNS = {
    headline: HEADLINE.map(([key, kind]) => [`headline.${key}`, kind]),
    // ten columns fit: the social fund's received here, all three of its figures in their own group
    financing: FINANCING.filter(([key]) => !["social_fund_imposed", "social_fund_outstanding"].includes(key))
      .map(([key, kind]) => [`financing.${key}`, kind]),
    social_fund: FINANCING.filter(([key]) => key.startsWith("social_fund_")).map(([key, kind]) => [`financing.${key}`, kind]),
    construction: [["construction.first_time_pass_rate_pct", "pct"], ["construction.median_days_order_to_handover", "days"]],
    desludging: DESLUDGING.map(([key, kind]) => [`desludging.${key}`, kind]),
  };
  COLUMNS.summary = [
    ["headline.members", "int"], ["headline.people_reached", "int"],
    ["headline.women_pct", "pct"], ["financing.disbursed_value", "money"], ["financing.outstanding", "money"],
    ["financing.par30_pct", "pct"], ["financing.repayment_rate_pct", "rate"],
    ["construction.first_time_pass_rate_pct", "pct"], ["desludging.emptied", "int"],
  ];
  /** In this table a unit goes in the column's header, so the cells hold bare numbers and ten columns fit. */
  const CELL_KIND = { money: "int", m3: "dec", days: "dec" };
  const UNIT = { money: "bycoop.unit.money", m3: "bycoop.unit.m3", days: "bycoop.unit.days" };
  const columnLabel = (field, kind) => (UNIT[kind] ? `${t(field)} ${t(UNIT[kind])}` : t(field));
  /** What the reader chose in the table; kept across redraws (language, date, resize), reset for another scope. */
  const byCoop = { scope: null, group: "summary", sort: null, dir: "desc", query: "", page: 1 };

  const coopId = (x) => (x.scope || {}).id || "";
  const coopName = (x) => (x.scope && (x.scope.name || x.scope.id)) || "";
  /** The raw figure behind a column ("section.key") of one scope's figures. */
  function figure(x, field) {
    const [section, key] = field.split(".");
    const v = (x[section] || {})[key];
    return v === undefined ? null : v;
  }
  /** Plural-aware label: key.one / key.other by the language's plural rules (Indonesian has one form). */
  function tn(key, n, vars) {
    const form = new Intl.PluralRules(locale()).select(n);
    const k = DICT[lang][`${key}.${form}`] !== undefined ? `${key}.${form}` : `${key}.other`;
    return t(k, { n: fmt.int(n), ...(vars || {}) });
  }
  /** Case- and accent-insensitive text for the name search. */
  const folded = (s) => String(s).normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLocaleLowerCase();

  function renderByCooperative(d) {
    const coops = d.scope && d.scope.kind === "programme" ? d.by_cooperative || [] : [];
    $("bycoop-panel").hidden = coops.length === 0;
    if (!coops.length) { fill("bycoop"); return; }
    const scopeId = (d.scope || {}).id || "";
    if (byCoop.scope !== scopeId) Object.assign(byCoop, { scope: scopeId, group: "summary", sort: null, dir: "desc", query: "", page: 1 });
    $("bycoop-search").value = byCoop.query;
    document.querySelectorAll("#bycoop-groups button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.group === byCoop.group)));
    drawByCooperative();
  }

  /** The rows that pass the search, in the chosen order. */
  function byCoopRows(coops) {
    const q = folded(byCoop.query.trim());
    const rows = q ? coops.filter((x) => folded(coopName(x)).includes(q)) : coops.slice();
    const collator = new Intl.Collator(locale(), { sensitivity: "base", numeric: true });
    const byName = (a, b) => collator.compare(coopName(a), coopName(b));
    const sign = byCoop.dir === "asc" ? 1 : -1;
    if (byCoop.sort === "name") {
      rows.sort((a, b) => sign * byName(a, b));
    } else if (byCoop.sort) {
      rows.sort((a, b) => {
        const va = figure(a, byCoop.sort), vb = figure(b, byCoop.sort);
        if (!isNum(va) || !isNum(vb)) return isNum(va) ? -1 : isNum(vb) ? 1 : byName(a, b);  // no figure: last
        return va === vb ? byName(a, b) : sign * (va - vb);
      });
    }
    return rows;
  }

  function drawByCooperative() {
    const d = data;
    if (!d) return;
    const coops = d.by_cooperative || [];
    const columns = COLUMNS[byCoop.group] || COLUMNS.summary;
    if (byCoop.sort && byCoop.sort !== "name" && !columns.some(([field]) => field === byCoop.sort)) byCoop.sort = null;
    const rows = byCoopRows(coops);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    byCoop.page = Math.min(Math.max(1, byCoop.page), pages);
    const first = (byCoop.page - 1) * PAGE_SIZE;
    const shownRows = rows.slice(first, first + PAGE_SIZE);

    const ariaSort = (key) => (byCoop.sort === key ? (byCoop.dir === "asc" ? "ascending" : "descending") : null);
    const arrow = (key) => (byCoop.sort === key ? (byCoop.dir === "asc" ? "▲" : "▼") : null);
    const header = (key, label, cls) => el("th", { scope: "col", class: cls, "aria-sort": ariaSort(key) }, [
      el("button", { type: "button", class: "sort", "data-sort": key,
        title: t(byCoop.sort === key && byCoop.dir === (key === "name" ? "asc" : "desc") ? "bycoop.sort_reverse" : "bycoop.sort_by", { column: label }) }, [
        // only the sorted column shows an arrow (kept with the label's last word): the others stay narrow
        el("span", { class: "sort-label", text: label }),
        arrow(key) && el("span", { class: "sort-icon", "aria-hidden": "true", text: `\u00a0${arrow(key)}` })]),
    ]);
    const cellsOf = (x, id) => columns.map(([field, kind]) => {
      const v = figure(x, field);
      return el("td", { class: "num", "data-field": field, "data-cooperative": id, "data-value": v ?? "",
        text: format(CELL_KIND[kind] || kind, v) });
    });
    const totalRow = el("tr", { class: "total", "data-cooperative": "total" }, [
      el("th", { scope: "row", class: "name" }, [el("span", { class: "total-label", text: t("bycoop.total") }),
        el("span", { class: "total-count", text: tn("scope.count", coops.length) })]),
      ...cellsOf(d, "total"),
    ]);
    const body = shownRows.length
      ? shownRows.map((x) => el("tr", { "data-cooperative": coopId(x) }, [
        el("th", { scope: "row", class: "name", text: coopName(x) }), ...cellsOf(x, coopId(x))]))
      : [el("tr", { class: "empty-row" }, [el("td", { colspan: columns.length + 1, text: t("bycoop.no_match", { query: byCoop.query.trim() }) })])];
    fill("bycoop", el("table", { class: "data bycoop", "data-group": byCoop.group }, [
      el("caption", { class: "visually-hidden", text: `${t("bycoop.caption")} ${t(`bycoop.group.${byCoop.group}`)}.` }),
      el("thead", {}, [el("tr", {}, [header("name", t("bycoop.cooperative"), "name"),
        ...columns.map(([field, kind]) => header(field, columnLabel(field, kind), "num"))])]),
      el("tbody", { class: "total-body" }, [totalRow]),
      el("tbody", { class: "coop-body" }, body),
    ]));
    $("bycoop").querySelectorAll("button.sort").forEach((b) => b.addEventListener("click", () => sortBy(b.dataset.sort)));

    const range = rows.length ? { from: fmt.int(first + 1), to: fmt.int(first + shownRows.length) } : { from: 0, to: 0 };
    $("bycoop-range").textContent = rows.length === coops.length
      ? t("bycoop.range", { ...range, total: fmt.int(rows.length) })
      : t("bycoop.range_filtered", { ...range, total: fmt.int(rows.length), all: fmt.int(coops.length) });
    $("bycoop-page").textContent = t("bycoop.page", { page: fmt.int(byCoop.page), pages: fmt.int(pages) });
    $("bycoop-prev").disabled = byCoop.page <= 1;
    $("bycoop-next").disabled = byCoop.page >= pages;
    $("bycoop-pages").hidden = pages <= 1;
  }

  /** A click on a column header: sort by it (numbers largest first, names A-Z), again to reverse. */
  function sortBy(key) {
    if (byCoop.sort === key) byCoop.dir = byCoop.dir === "asc" ? "desc" : "asc";
    else { byCoop.sort = key; byCoop.dir = key === "name" ? "asc" : "desc"; }
    byCoop.page = 1;
    drawByCooperative();
    const again = $("bycoop").querySelector(`button.sort[data-sort="${CSS.escape(key)}"]`);
    if (again) again.focus();  // the table was redrawn: keep the keyboard where it was
  }

  function wireByCooperative() {
    document.querySelectorAll("#bycoop-groups button").forEach((b) => b.addEventListener("click", () => {
      byCoop.group = b.dataset.group;
      document.querySelectorAll("#bycoop-groups button").forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
      drawByCooperative();
    }));
    $("bycoop-search").addEventListener("input", (e) => { byCoop.query = e.target.value; byCoop.page = 1; drawByCooperative(); });
    $("bycoop-search-form").addEventListener("submit", (e) => e.preventDefault());
    $("bycoop-prev").addEventListener("click", () => { byCoop.page -= 1; drawByCooperative(); });
    $("bycoop-next").addEventListener("click", () => { byCoop.page += 1; drawByCooperative(); });
  }

  // ---- exports
  // The reporting service's own exports, when its OpenAPI document lists them (it does from this release on);
  // otherwise only the in-browser CSV of the figures on screen.
  const EXPORT_XLSX = "/reports/exports/report.xlsx";
  const EXPORT_INDICATORS = "/reports/exports/indicators.csv";
  const EXPORT_TABLE = "/reports/exports/tables/{table}";
  const TABLE_LIST = "/reports/tables";
  let tableNames = null;  // the tables this key may export (GET /reports/tables), fetched once per key

  async function discoverExports() {
    try {
      const r = await fetch("/openapi.json", { cache: "no-store", credentials: "omit" });
      if (!r.ok) return;
      const paths = (await r.json()).paths || {};
      serverExports = [EXPORT_XLSX, EXPORT_INDICATORS, EXPORT_TABLE, TABLE_LIST].filter((p) => paths[p] && paths[p].get);
    } catch (e) { serverExports = []; }
  }

  async function loadTableNames() {
    if (tableNames !== null || !serverExports.includes(EXPORT_TABLE) || !serverExports.includes(TABLE_LIST)) return;
    try {
      const r = await fetch(TABLE_LIST, { headers: { "X-API-Key": storedKey() || "" }, cache: "no-store", credentials: "omit" });
      tableNames = r.ok ? (await r.json()).tables || [] : [];
    } catch (e) { tableNames = []; }
  }

  function renderExports(d) {
    const button = (target, label) => el("button", { type: "button", "data-export": target, text: label });
    const parts = [];
    if (serverExports.includes(EXPORT_XLSX)) parts.push(button(EXPORT_XLSX, t("export.xlsx")));
    if (serverExports.includes(EXPORT_INDICATORS)) parts.push(button(EXPORT_INDICATORS, t("export.indicators")));
    parts.push(button("client-csv", t("export.csv")));
    const rows = [el("div", { class: "button-row" }, parts)];
    if ((tableNames || []).length) {
      const select = el("select", { id: "export-table", "aria-label": t("export.table") },
        tableNames.map((name) => el("option", { value: name, text: tOr(`tables.${name}`, name) })));
      const tableButton = (format) => el("button", { type: "button", "data-export": "table", "data-format": format,
        text: format.toUpperCase() });
      rows.push(el("div", { class: "button-row table-export" }, [
        el("label", { for: "export-table", text: t("export.table") }), select, tableButton("csv"), tableButton("xlsx")]));
    }
    fill("export-buttons", ...rows);
    $("export-note").textContent = serverExports.length ? "" : t("export.client_note");
    $("export-buttons").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      if (b.dataset.export === "table") {
        const table = $("export-table").value;
        exportVia(`${EXPORT_TABLE.replace("{table}", encodeURIComponent(table))}?format=${b.dataset.format}`, d);
      } else {
        exportVia(b.dataset.export, d);
      }
    }));
  }

  async function exportVia(target, d) {
    const note = $("export-note");
    if (target === "client-csv") {
      download(csvOf(d), `washfin-${(d.scope || {}).id || "dashboard"}-${d.as_of}.csv`, "text/csv;charset=utf-8");
      return;
    }
    // the key goes in a header, never in a link: fetch the file, then hand it to the browser as a blob
    const sep = target.includes("?") ? "&" : "?";
    let r;
    try {
      // the files' headers and codes in words come in the page's language
      r = await fetch(`${target}${sep}as_of=${encodeURIComponent(d.as_of)}&lang=${encodeURIComponent(lang)}`,
        { headers: { "X-API-Key": storedKey() || "" }, cache: "no-store", credentials: "omit" });
    } catch (e) { note.textContent = t("state.network"); return; }
    if (r.status === 401) { forgetKey(); askForKey(t("key.rejected")); return; }
    if (!r.ok) { note.textContent = t("export.failed", { status: r.status }); return; }
    const m = /filename="?([^";]+)"?/.exec(r.headers.get("content-disposition") || "");
    download(await r.blob(), m ? m[1] : target.split("?")[0].split("/").pop(), null);
    note.textContent = "";
  }

  function download(content, filename, type) {
    const blob = content instanceof Blob ? content : new Blob([content], { type });
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: filename });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  /** The figures on screen as CSV (section, indicator, period, value): raw numbers, one row each. */
  function csvOf(d) {
    const rows = [["scope", "section", "indicator", "period", "value"]];
    const scopeId = (d.scope || {}).id || "";
    const put = (scope, section, indicator, period, value) => rows.push([scope, section, indicator, period, value ?? ""]);
    const flat = (scope, x) => {
      for (const [k] of HEADLINE) put(scope, "headline", k, x.as_of || d.as_of, (x.headline || {})[k]);
      for (const [k] of FINANCING) put(scope, "financing", k, x.as_of || d.as_of, (x.financing || {})[k]);
      const c = x.construction || {};
      for (const [k, v] of Object.entries(c.by_status || {})) put(scope, "construction", `by_status.${k}`, d.as_of, v);
      put(scope, "construction", "first_time_pass_rate_pct", d.as_of, c.first_time_pass_rate_pct);
      put(scope, "construction", "median_days_order_to_handover", d.as_of, c.median_days_order_to_handover);
      const dl = x.desludging || {};
      for (const [k] of DESLUDGING) put(scope, "desludging", k, d.as_of, dl[k]);
      for (const k of FLOW) put(scope, "desludging", `sludge_flow_pct.${k}`, d.as_of, (dl.sludge_flow_pct || {})[k]);
    };
    flat(scopeId, d);
    for (const tg of d.targets || []) {
      put(scopeId, "targets", `${tg.indicator}.target`, tg.due_on || "", tg.target);
      put(scopeId, "targets", `${tg.indicator}.actual`, d.as_of, tg.actual);
    }
    for (const service of ["water", "sanitation"]) {
      const l = (d.access_ladder || {})[service] || {};
      for (const when of ["baseline", "now"]) for (const r of RUNGS[service]) put(scopeId, `access_ladder.${service}`, `${when}.${r}`, d.as_of, (l[when] || {})[r]);
    }
    for (const m of d.monthly || []) {
      for (const k of ["disbursed", "repaid", "par30_pct", "desludging_due", "desludging_done"]) put(scopeId, "monthly", k, m.month, m[k]);
    }
    for (const x of d.by_cooperative || []) flat((x.scope || {}).id || "", x);
    const cell = (v) => { const s = String(v); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
    return "\ufeff" + rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  }

  // ---- wiring
  function start() {
    applyLabels();
    document.querySelectorAll(".lang-switch button").forEach((b) => b.addEventListener("click", () => setLanguage(b.dataset.lang)));
    $("key-form").addEventListener("submit", onKeySubmit);
    $("change-key").addEventListener("click", () => { forgetKey(); askForKey(); });
    $("retry").addEventListener("click", load);
    $("as-of").addEventListener("change", (e) => {
      asOf = e.target.value || "";
      const url = new URL(location.href);
      if (asOf) url.searchParams.set("as_of", asOf); else url.searchParams.delete("as_of");
      history.replaceState(null, "", url);
      load();
    });
    $("as-of-today").addEventListener("click", () => { $("as-of").value = jakartaToday(); $("as-of").dispatchEvent(new Event("change")); });
    $("asof-form").addEventListener("submit", (e) => e.preventDefault());
    wireByCooperative();
    // charts are drawn to their boxes' widths: redraw when the window's width changes
    // (compared with the width of the last drawing, not of the last resize: a resize that came while the data
    // were loading must still redraw once they are drawn for another width)
    let timer = null;
    window.addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { if (data && window.innerWidth !== drawnWidth) render(data); }, 150);
    });
    discoverExports().finally(load);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
