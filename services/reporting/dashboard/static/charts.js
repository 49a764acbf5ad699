/* washfin dashboard charts: small, dependency-free inline SVG.
 *
 * Each function builds a complete <figure>: a legend, the SVG (role="img" with an aria-label and a <title>),
 * and a collapsible data table with the exact figures, so a screen reader, a printout and a test all see the
 * same numbers. Every mark carries data-series / data-category / data-value with the raw number it draws.
 * Callers pass already-translated labels and the number formatters of the current language.
 */
"use strict";

(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  let uid = 0;

  /** An element (SVG when svg=true) with attributes and children; null/undefined attributes are left out. */
  function el(tag, attrs, children, svg) {
    const node = svg ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children || []) if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }
  const s = (tag, attrs, children) => el(tag, attrs, children, true);

  /** Charts are drawn at their container's pixel width (viewBox = pixels), so text keeps its size. */
  function width(opts) { return Math.max(300, Math.round(opts.width || 720)); }

  /** Round numbers for an axis: ticks from 0 to a "nice" maximum at or above max. */
  function niceTicks(max, count, integer) {
    if (!(max > 0)) return [0, 1];
    const rough = max / count;
    const mag = Math.pow(10, Math.floor(Math.log10(rough)));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= rough);
    if (integer) step = Math.max(1, Math.ceil(step));  // counts: no tick between two whole numbers
    const ticks = [];
    for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }

  /** Black or white, whichever reads better on the given #rrggbb fill (WCAG relative luminance). */
  function inkOn(hex) {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)));
    const lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    return (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) ? "#111827" : "#ffffff";
  }

  function legend(items) {
    return el("ul", { class: "legend" }, items.map((it) =>
      el("li", {}, [el("span", { class: "swatch", "aria-hidden": "true", "data-color": it.color }), it.label])));
  }

  /** Swatch colours are set through the CSSOM (allowed by the page's CSP, unlike style attributes). */
  function paintSwatches(root) {
    root.querySelectorAll(".swatch[data-color]").forEach((sw) => { sw.style.background = sw.dataset.color; });
  }

  function dataTable(caption, columns, rows) {
    const thead = el("thead", {}, [el("tr", {}, columns.map((c, i) => el("th", { scope: "col", class: i ? "num" : null, text: c })))]);
    const tbody = el("tbody", {}, rows.map((r) => el("tr", {}, r.map((cell, i) =>
      i === 0 ? el("th", { scope: "row", text: cell }) : el("td", { class: "num", text: cell })))));
    return el("table", { class: "data" }, [el("caption", { class: "visually-hidden", text: caption }), thead, tbody]);
  }

  function figure(key, opts, legendItems, svg, table) {
    const fig = el("figure", { class: "chart", "data-chart": key }, [
      legendItems ? legend(legendItems) : null,
      svg,
      el("details", { class: "chart-data" }, [el("summary", { text: opts.showData }), table]),
    ]);
    paintSwatches(fig);
    return fig;
  }

  function svgRoot(width, height, label) {
    const id = `chart-title-${++uid}`;
    return s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-labelledby": id,
      "aria-label": label, preserveAspectRatio: "xMidYMid meet", focusable: "false" },
    [s("title", { id, text: label })]);
  }

  /** Category labels may hold a second line after "\n" (the year under January). */
  function categoryLabel(x, y, label) {
    const lines = String(label).split("\n");
    return s("text", { x, y, class: "axis-label", "text-anchor": "middle" },
      lines.map((line, i) => s("tspan", { x, dy: i ? "1.15em" : 0, text: line })));
  }

  /** A text's width in pixels, estimated (the SVG is built before it is in the page, so it cannot be
   * measured): generous for the page's sans-serif at this size, so labels placed apart never touch. */
  const textWidth = (text, size) => String(text).length * size * 0.64;

  /**
   * The category labels that fit under a band of this width: every k-th one, counted back from the
   * latest (always shown), so months never run together on a phone. A year carried by a label that is
   * left out moves to the next label shown, so every year stays named.
   */
  function thinnedLabels(categories, band, size) {
    const lines = categories.map((c) => String(c.label).split("\n"));
    const need = Math.max(1, ...lines.map((l) => Math.max(...l.map((line) => textWidth(line, size))))) + 8;
    const step = Math.max(1, Math.ceil(need / band));
    const out = [];
    let year = null;
    lines.forEach((l, i) => {
      if (l[1]) year = l[1];
      if ((lines.length - 1 - i) % step !== 0) return;
      out.push([i, year ? `${l[0]}\n${year}` : l[0]]);
      year = null;
    });
    return out;
  }

  /** Horizontal room taken by the labels placed so far; a label that would touch one of them is left out. */
  function placer() {
    const boxes = [];
    return (x0, x1, y0, y1) => {
      if (boxes.some((b) => x0 < b[1] + 2 && b[0] < x1 + 2 && y0 < b[3] + 1 && b[2] < y1 + 1)) return false;
      boxes.push([x0, x1, y0, y1]);
      return true;
    };
  }

  function yAxis(g, ticks, y, x0, x1, fmt) {
    for (const t of ticks) {
      g.appendChild(s("line", { x1: x0, x2: x1, y1: y(t), y2: y(t), class: t === 0 ? "axis" : "grid" }));
      g.appendChild(s("text", { x: x0 - 8, y: y(t) + 4, class: "axis-label", "text-anchor": "end", text: fmt(t) }));
    }
  }

  /**
   * Vertical bars, one group per category, one bar per series.
   * opts: {key, label, categories:[{key,label}], series:[{key,label,color,values}], format, axisFormat, showData, empty}
   */
  function groupedBars(opts) {
    const W = width(opts), H = 280, L = 78, R = 12, T = 14, B = 46;
    const svg = svgRoot(W, H, opts.label);
    const max = Math.max(0, ...opts.series.flatMap((se) => se.values));
    const ticks = niceTicks(max, 4, opts.integer);
    const top = ticks[ticks.length - 1];
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const g = s("g");
    yAxis(g, max === 0 ? [0] : ticks, y, L, W - R, opts.axisFormat);  // no made-up scale without data
    const n = Math.max(1, opts.categories.length);
    const band = (W - L - R) / n;
    const barW = Math.min(26, (band * 0.76) / opts.series.length);
    opts.categories.forEach((cat, i) => {
      const x0 = L + band * i + (band - barW * opts.series.length) / 2;
      opts.series.forEach((se, j) => {
        const v = se.values[i] || 0;
        const h = Math.max(0, y(0) - y(v));
        g.appendChild(s("rect", { x: x0 + j * barW, y: y(v), width: barW - 2, height: h, fill: se.color, rx: 2,
          class: "mark", "data-series": se.key, "data-category": cat.key, "data-value": v },
        [s("title", { text: `${cat.label.replace("\n", " ")} · ${se.label}: ${opts.format(v)}` })]));
      });
    });
    for (const [i, label] of thinnedLabels(opts.categories, band, 12)) g.appendChild(categoryLabel(L + band * i + band / 2, H - B + 20, label));
    if (max === 0) g.appendChild(s("text", { x: (L + W) / 2, y: (T + H - B) / 2, class: "empty", "text-anchor": "middle", text: opts.empty }));
    svg.appendChild(g);
    const table = dataTable(opts.label, [opts.categoryHeading, ...opts.series.map((se) => se.label)],
      opts.categories.map((cat, i) => [cat.label.replace("\n", " "), ...opts.series.map((se) => opts.format(se.values[i] || 0))]));
    return figure(opts.key, opts, opts.series, svg, table);
  }

  /**
   * A line per series with a labelled point per category (e.g. PAR30 % by month).
   * opts: as groupedBars plus minTop (the y axis reaches at least this value).
   */
  function lineChart(opts) {
    const W = width(opts), H = 260, L = 60, R = 16, T = 22, B = 46;
    const svg = svgRoot(W, H, opts.label);
    const max = Math.max(opts.minTop || 0, ...opts.series.flatMap((se) => se.values));
    const ticks = niceTicks(max, 4);
    const top = ticks[ticks.length - 1];
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const n = Math.max(1, opts.categories.length);
    const band = (W - L - R) / n;
    const x = (i) => L + band * i + band / 2;
    const g = s("g");
    yAxis(g, ticks, y, L, W - R, opts.axisFormat);
    for (const [i, label] of thinnedLabels(opts.categories, band, 12)) g.appendChild(categoryLabel(x(i), H - B + 20, label));
    const place = placer();
    for (const se of opts.series) {
      const pts = se.values.map((v, i) => `${x(i).toFixed(1)},${y(v || 0).toFixed(1)}`).join(" ");
      g.appendChild(s("polyline", { points: pts, fill: "none", stroke: se.color, "stroke-width": 2.5,
        "stroke-linejoin": "round", class: "line", "data-series": se.key }));
      se.values.forEach((v, i) => {
        const cat = opts.categories[i];
        g.appendChild(s("circle", { cx: x(i), cy: y(v || 0), r: 4, fill: "#ffffff", stroke: se.color, "stroke-width": 2,
          class: "mark", "data-series": se.key, "data-category": cat.key, "data-value": v || 0 },
        [s("title", { text: `${cat.label.replace("\n", " ")} · ${se.label}: ${opts.format(v || 0)}` })]));
      });
      // label the points that say something (non-zero values, and the latest month), latest first; a label
      // that would touch one already placed is left out (its value is in the point's title and the table)
      for (let i = se.values.length - 1; i >= 0; i -= 1) {
        const v = se.values[i];
        if (!v && i !== se.values.length - 1) continue;
        const text = opts.format(v || 0), w = textWidth(text, 11);
        const cx = Math.min(Math.max(x(i), L + w / 2 + 2), W - w / 2 - 2);  // inside the plot, clear of the axis labels
        const base = y(v || 0) - 9;
        if (place(cx - w / 2, cx + w / 2, base - 11, base + 3)) {
          g.appendChild(s("text", { x: cx, y: base, class: "point-label", "text-anchor": "middle", text }));
        }
      }
    }
    svg.appendChild(g);
    const table = dataTable(opts.label, [opts.categoryHeading, ...opts.series.map((se) => se.label)],
      opts.categories.map((cat, i) => [cat.label.replace("\n", " "), ...opts.series.map((se) => opts.format(se.values[i] || 0))]));
    return figure(opts.key, opts, opts.series.length > 1 ? opts.series : null, svg, table);
  }

  /**
   * Horizontal 100 % stacked bars, one per row (e.g. the JMP ladder at baseline and now).
   * opts: {key, label, rows:[{key,label,values:{part:int}}], parts:[{key,label,color}], format, percent, showData, empty}
   */
  function stackedBars(opts) {
    const W = width(opts), L = 96, R = 8, rowH = 46, T = 8;
    const H = T + rowH * opts.rows.length + 4;
    const svg = svgRoot(W, H, opts.label);
    const g = s("g");
    const plotW = W - L - R;
    opts.rows.forEach((row, i) => {
      const y0 = T + i * rowH;
      const total = opts.parts.reduce((sum, p) => sum + (row.values[p.key] || 0), 0);
      g.appendChild(s("text", { x: L - 10, y: y0 + 22, class: "row-label", "text-anchor": "end", text: row.label }));
      if (total === 0) {
        g.appendChild(s("rect", { x: L, y: y0 + 4, width: plotW, height: 30, class: "empty-bar", rx: 3 }));
        g.appendChild(s("text", { x: L + plotW / 2, y: y0 + 24, class: "empty", "text-anchor": "middle", text: opts.empty }));
        return;
      }
      let x = L;
      for (const p of opts.parts) {
        const v = row.values[p.key] || 0;
        const w = plotW * v / total;
        const rect = s("rect", { x, y: y0 + 4, width: Math.max(0, w), height: 30, fill: p.color,
          class: "mark", "data-series": p.key, "data-category": row.key, "data-value": v },
        [s("title", { text: `${row.label} · ${p.label}: ${opts.format(v)} (${opts.percent(100 * v / total)})` })]);
        g.appendChild(rect);
        if (w >= textWidth(opts.format(v), 12) + 8) {
          g.appendChild(s("text", { x: x + w / 2, y: y0 + 24, fill: inkOn(p.color), class: "seg-label",
            "text-anchor": "middle", text: opts.format(v) }));
        }
        x += w;
      }
    });
    svg.appendChild(g);
    const table = dataTable(opts.label, [opts.partHeading, ...opts.rows.map((r) => r.label)],
      opts.parts.map((p) => [p.label, ...opts.rows.map((r) => opts.format(r.values[p.key] || 0))]));
    return figure(opts.key, opts, opts.parts, svg, table);
  }

  /**
   * Horizontal progress bars against a maximum (target progress in %, sludge-flow shares in %).
   * opts: {key, label, items:[{key,label,value,text}], max, color, format, showData, headings:[2]}
   */
  function progressBars(opts) {
    const W = width(opts), L = 2, R = 2, T = 4, LINE = 17, SIZE = 13;
    const plotW = W - L - R;
    /** Words of a label in lines no wider than room. */
    const wrap = (text, room) => {
      const lines = [];
      for (const word of String(text).split(" ")) {
        const last = lines.length ? lines[lines.length - 1] : null;
        if (last !== null && textWidth(`${last} ${word}`, SIZE) <= room) lines[lines.length - 1] = `${last} ${word}`;
        else lines.push(word);
      }
      return lines;
    };
    const rows = opts.items.map((it) => {
      const value = it.text || opts.format(it.value || 0);
      const together = textWidth(it.label, SIZE) + textWidth(value, SIZE) + 16 <= plotW;
      return { it, value, together, lines: together ? [it.label] : wrap(it.label, plotW) };
    });
    const heightOf = (r) => (r.lines.length + (r.together ? 0 : 1)) * LINE + 30;
    const H = T + Math.max(48, rows.reduce((sum, r) => sum + heightOf(r), 0));
    const svg = svgRoot(W, H, opts.label);
    const g = s("g");
    let y0 = T;
    rows.forEach(({ it, value, together, lines }) => {
      const frac = Math.max(0, Math.min(1, (it.value || 0) / opts.max));
      g.appendChild(s("text", { x: L, y: y0 + 13, class: "row-label" },
        lines.map((line, i) => s("tspan", { x: L, dy: i ? LINE : 0, text: line }))));
      const valueY = together ? y0 + 13 : y0 + 13 + LINE * lines.length;
      g.appendChild(s("text", { x: W - R, y: valueY, class: "bar-value", "text-anchor": "end", text: value }));
      const barY = valueY + 8;
      g.appendChild(s("rect", { x: L, y: barY, width: plotW, height: 16, rx: 8, class: "track" }));
      g.appendChild(s("rect", { x: L, y: barY, width: plotW * frac, height: 16, rx: 8, fill: it.color || opts.color,
        class: "mark", "data-series": opts.key, "data-category": it.key, "data-value": it.value || 0 },
      [s("title", { text: `${it.label}: ${value}` })]));
      y0 += heightOf({ lines, together });
    });
    svg.appendChild(g);
    const table = dataTable(opts.label, opts.headings, opts.items.map((it) => [it.label, it.text || opts.format(it.value || 0)]));
    return figure(opts.key, opts, null, svg, table);
  }

  window.WFCharts = { groupedBars, lineChart, stackedBars, progressBars, niceTicks, inkOn };
})();
