// Inline SVG charts for the batch page: no library, no CDN. Every text node is set with textContent.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = { succeeded: '#1f9d55', failed: '#d64545', cancelled: '#8a94a6', pending: '#d7dce5' };

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function svg(width, height, label) {
    const root = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img' });
    root.appendChild(el('title', {}, label));
    return root;
  }

  function replace(container, node) {
    container.replaceChildren(node);
  }

  /** Donut of a batch's valid chats by outcome, with a legend that also lists rejected rows and duplicates. */
  function outcomes(container, batch) {
    const parts = [
      ['succeeded', batch.counts.succeeded],
      ['failed', batch.counts.failed],
      ['cancelled', batch.counts.cancelled],
      ['pending', batch.pending],
    ];
    const total = parts.reduce((sum, [, n]) => sum + n, 0);
    const root = svg(320, 170, `Outcomes: ${parts.map(([k, n]) => `${n} ${k}`).join(', ')}`);
    const r = 60;
    const c = 2 * Math.PI * r;
    const ring = el('g', { transform: 'translate(80 85) rotate(-90)' });
    ring.appendChild(el('circle', { r, fill: 'none', stroke: COLORS.pending, 'stroke-width': 24 }));
    let offset = 0;
    for (const [kind, n] of parts) {
      if (!total || !n) continue;
      const len = (n / total) * c;
      const seg = el('circle', {
        r,
        fill: 'none',
        stroke: COLORS[kind],
        'stroke-width': 24,
        'stroke-dasharray': `${len} ${c - len}`,
        'stroke-dashoffset': -offset,
      });
      seg.appendChild(el('title', {}, `${kind}: ${n}`));
      ring.appendChild(seg);
      offset += len;
    }
    root.appendChild(ring);
    const pct = total ? Math.floor((100 * (total - batch.pending)) / total) : 0;
    root.appendChild(el('text', { x: 80, y: 90, 'text-anchor': 'middle', class: 'center' }, `${pct}%`));
    const legend = el('g', { class: 'legend', transform: 'translate(170 25)' });
    const rows = [...parts, ['rejected rows', batch.counts.rejected], ['duplicates', batch.counts.duplicates]];
    rows.forEach(([kind, n], i) => {
      const y = i * 22;
      if (COLORS[kind]) legend.appendChild(el('rect', { x: 0, y: y - 10, width: 12, height: 12, rx: 2, fill: COLORS[kind] }));
      legend.appendChild(el('text', { x: 18, y }, `${kind} ${n}`));
    });
    root.appendChild(legend);
    replace(container, root);
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  /** Stacked bars: chats finished per second in each time bucket, by outcome. */
  function throughput(container, timeline) {
    const width = 640;
    const height = 220;
    const m = { left: 44, right: 10, top: 10, bottom: 26 };
    const points = timeline.points || [];
    if (points.length === 0) {
      const root = svg(width, 60, 'Throughput: no results yet');
      root.appendChild(el('text', { x: 10, y: 30 }, 'No results yet.'));
      replace(container, root);
      return;
    }
    const seconds = timeline.bucketMs / 1000;
    const rate = (p) => (p.succeeded + p.failed + p.cancelled) / seconds;
    const top = niceMax(Math.max(...points.map(rate)));
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const barW = plotW / points.length;
    const y = (v) => m.top + plotH - (v / top) * plotH;
    const root = svg(width, height, `Throughput: up to ${top} chats per second, ${points.length} buckets of ${seconds} s`);
    for (const tick of [0, top / 2, top]) {
      root.appendChild(el('line', { x1: m.left, x2: width - m.right, y1: y(tick), y2: y(tick), class: 'axis', 'stroke-dasharray': tick ? '3 3' : '' }));
      root.appendChild(el('text', { x: m.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, Number.isInteger(tick) ? tick : tick.toFixed(1)));
    }
    points.forEach((p, i) => {
      let base = 0;
      const x = m.left + i * barW;
      for (const kind of ['succeeded', 'failed', 'cancelled']) {
        const v = p[kind] / seconds;
        if (!v) continue;
        const rect = el('rect', {
          x: x + barW * 0.1,
          width: Math.max(1, barW * 0.8),
          y: y(base + v),
          height: Math.max(0.5, y(base) - y(base + v)),
          fill: COLORS[kind],
        });
        rect.appendChild(el('title', {}, `${clock(p.t)}: ${p[kind]} ${kind} (${v.toFixed(1)}/s)`));
        root.appendChild(rect);
        base += v;
      }
    });
    const last = points[points.length - 1];
    root.appendChild(el('text', { x: m.left, y: height - 8 }, clock(points[0].t)));
    root.appendChild(el('text', { x: width - m.right, y: height - 8, 'text-anchor': 'end' }, clock(last.t + timeline.bucketMs)));
    root.appendChild(el('text', { x: m.left + plotW / 2, y: height - 8, 'text-anchor': 'middle' }, `${seconds} s per bar`));
    replace(container, root);
  }

  window.BulkCharts = { outcomes, throughput };
})();
