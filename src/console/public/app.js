// bulk-unassign console page. Vanilla JS, no build step. Rules kept here:
// - anything that came from a CSV or from Redis is put on the page with textContent, never innerHTML;
// - the page knows no secret: the session is an HttpOnly cookie it cannot read, and no route sends config.
'use strict';

(function () {
  const view = document.getElementById('view');
  let leaveView = () => {};

  // ---------- helpers ----------

  function $(id) {
    return document.getElementById(id);
  }

  function node(tag, text, className) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (className) n.className = className;
    return n;
  }

  /** Status names are ours, but they still only reach a class name after a strict check. */
  function statusClass(status) {
    return /^[a-z-]{1,20}$/.test(status) ? `status status-${status}` : 'status';
  }

  function when(ms) {
    return ms ? new Date(ms).toLocaleString() : '—';
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '';
    if (seconds < 90) return `${seconds} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { credentials: 'same-origin', ...options, headers: { accept: 'application/json', ...(options.headers || {}) } });
    if (response.status === 401) {
      window.location.assign('/login');
      throw new Error('logged out');
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.message || `HTTP ${response.status}`);
      error.body = body;
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function postJson(path, data) {
    return api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(data || {}) });
  }

  function showError(box, error) {
    box.hidden = false;
    const b = error.body || {};
    const where = b.line ? `${b.file || 'file'}, line ${b.line}${b.column ? `, column ${b.column}` : ''}` : '';
    box.replaceChildren();
    if (where) box.appendChild(node('strong', where));
    box.appendChild(node('div', error.message));
  }

  /** Segments of a progress bar: succeeded, failed, cancelled; what is left shows as pending. */
  function barSegments(batch) {
    const valid = batch.counts.valid || 0;
    return [['succeeded', 'bar-seg-ok'], ['failed', 'bar-seg-fail'], ['cancelled', 'bar-seg-cancel']].map(([kind, cls]) => {
      const seg = node('div', null, cls);
      seg.style.width = valid ? `${(100 * batch.counts[kind]) / valid}%` : '0%';
      seg.title = `${batch.counts[kind]} ${kind}`;
      return seg;
    });
  }

  function progressBar(batch) {
    const bar = node('div', null, 'bar');
    bar.append(...barSegments(batch));
    return bar;
  }

  // ---------- batch list + upload ----------

  function renderList() {
    view.replaceChildren($('list-template').content.cloneNode(true));
    setUpUpload();
    let timer;
    let alive = true;
    const refresh = async () => {
      try {
        const { batches } = await api('/api/batches?limit=100');
        if (alive) fillBatchRows(batches);
      } catch {
        /* shown on the next successful refresh; the list is not critical */
      }
      if (alive) timer = setTimeout(refresh, 3000);
    };
    refresh();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }

  function fillBatchRows(batches) {
    const rows = $('batch-rows');
    if (!rows) return;
    $('no-batches').hidden = batches.length > 0;
    rows.replaceChildren(
      ...batches.map((b) => {
        const tr = node('tr');
        tr.dataset.batchId = b.id;
        const nameCell = node('td');
        const link = node('a', b.name);
        link.href = `#/batches/${encodeURIComponent(b.id)}`;
        nameCell.append(link, node('span', b.id, 'id'));
        const statusCell = node('td');
        statusCell.appendChild(node('span', b.status, statusClass(b.status)));
        const progressCell = node('td', null, 'wide');
        const wrap = node('div', null, 'progress-cell');
        wrap.append(progressBar(b), node('span', `${b.done}/${b.counts.valid}`));
        progressCell.appendChild(wrap);
        tr.append(nameCell, statusCell, progressCell, node('td', b.counts.succeeded, 'num'), node('td', b.counts.failed, 'num'), node('td', b.counts.rejected, 'num'), node('td', when(b.createdAt)));
        return tr;
      }),
    );
  }

  function setUpUpload() {
    const form = $('upload-form');
    const zone = $('drop-zone');
    const input = $('file-input');
    const button = $('upload-button');
    const errorBox = $('upload-error');
    let file = null;
    const choose = (f) => {
      file = f || null;
      $('chosen-file').textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KB)` : '';
      button.disabled = !file;
      errorBox.hidden = true;
    };
    input.addEventListener('change', () => choose(input.files[0]));
    for (const type of ['dragenter', 'dragover']) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add('dragging');
      });
    }
    for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('dragging'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length > 0) choose(event.dataTransfer.files[0]);
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!file) return;
      const data = new FormData();
      // Fields first, then the file: the server reads the parts in order.
      for (const name of ['name', 'waba']) data.append(name, form.elements[name].value);
      for (const name of ['force', 'dryRun']) data.append(name, form.elements[name].checked ? 'true' : 'false');
      data.append('file', file, file.name);
      upload(data, button, errorBox);
    });
  }

  /** XMLHttpRequest rather than fetch: it reports upload progress, which matters for a 500 MB file. */
  function upload(data, button, errorBox) {
    const bar = $('upload-progress');
    const status = $('upload-status');
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/batches');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.responseType = 'json';
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    status.textContent = 'uploading…';
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total;
      if (e.loaded === e.total) status.textContent = 'reading and enqueueing rows…';
    });
    xhr.addEventListener('load', () => {
      bar.hidden = true;
      status.textContent = '';
      button.disabled = false;
      const body = xhr.response || {};
      if (xhr.status === 401) return window.location.assign('/login');
      if (xhr.status !== 201) {
        const error = new Error(body.message || `upload failed (HTTP ${xhr.status})`);
        error.body = body;
        return showError(errorBox, error);
      }
      window.location.hash = `#/batches/${encodeURIComponent(body.id)}`;
    });
    xhr.addEventListener('error', () => {
      bar.hidden = true;
      button.disabled = false;
      showError(errorBox, new Error('upload failed: the server did not answer'));
    });
    xhr.send(data);
  }

  // ---------- one batch ----------

  function renderBatch(id) {
    view.replaceChildren($('batch-template').content.cloneNode(true));
    const base = `/api/batches/${encodeURIComponent(id)}`;
    for (const [linkId, file] of [['dl-failed', 'failed.csv'], ['dl-rejected', 'rejected.csv'], ['dl-summary-md', 'summary.md'], ['dl-summary-json', 'summary.json']]) {
      $(linkId).href = `${base}/reports/${file}`;
    }
    let alive = true;
    let stream = null;
    let lastTimeline = 0;
    let timelineTimer;
    const errorBox = $('b-error');

    const loadTimeline = async (force) => {
      if (!alive || (!force && Date.now() - lastTimeline < 4000)) return;
      lastTimeline = Date.now();
      try {
        const timeline = await api(`${base}/timeline`);
        if (alive) window.BulkCharts.throughput($('chart-throughput'), timeline);
      } catch {
        /* the chart is optional */
      }
    };
    const update = (batch) => {
      if (!alive) return;
      fillBatch(batch);
      loadTimeline(false);
    };
    const follow = () => {
      if (stream) stream.close();
      stream = new EventSource(`${base}/events`);
      stream.addEventListener('progress', (e) => update(JSON.parse(e.data)));
      stream.addEventListener('infra', (e) => {
        const { problem } = JSON.parse(e.data);
        const box = $('b-infra');
        box.textContent = problem ? `${problem}; waiting for it (no chat is failed for this)` : '';
        box.hidden = !problem;
      });
      stream.addEventListener('end', () => {
        stream.close();
        stream = null;
        // Final state: the report is written now, and the last results are in the timeline.
        api(base).then(update, () => {});
        clearTimeout(timelineTimer);
        timelineTimer = setTimeout(() => loadTimeline(true), 300);
      });
      stream.addEventListener('gone', () => {
        stream.close();
        stream = null;
        showError(errorBox, new Error('this batch no longer exists (its records expired or were deleted)'));
      });
      const current = stream;
      current.addEventListener('error', () => {
        // EventSource reconnects by itself after a dropped connection, but gives up on an error answer (503 when
        // the server has too many streams open): then try again later, while this view is still shown.
        if (current.readyState !== EventSource.CLOSED) return;
        setTimeout(() => {
          if (alive && stream === current) follow();
        }, 10_000);
      });
    };
    const act = async (action, body) => {
      errorBox.hidden = true;
      try {
        const result = await postJson(`${base}/${action}`, body);
        if (action === 'rerun') {
          window.location.hash = `#/batches/${encodeURIComponent(result.id)}`;
          return;
        }
        update(result.batch);
        follow();
      } catch (error) {
        showError(errorBox, error);
      }
    };
    $('act-pause').addEventListener('click', () => act('pause'));
    $('act-resume').addEventListener('click', () => act('resume'));
    $('act-cancel').addEventListener('click', () => {
      if (window.confirm('Cancel this batch? Waiting chats are recorded as cancelled; chats in flight finish.')) act('cancel');
    });
    $('act-rerun').addEventListener('click', () => {
      const onlyReason = $('rerun-reason').value.trim();
      act('rerun', { includePermanent: $('rerun-permanent').checked, ...(onlyReason ? { onlyReason } : {}) });
    });

    api(base).then(
      (batch) => {
        update(batch);
        loadTimeline(true);
        follow();
      },
      (error) => showError(errorBox, error),
    );
    return () => {
      alive = false;
      clearTimeout(timelineTimer);
      if (stream) stream.close();
    };
  }

  function countCard(label, value) {
    const card = node('div', null, 'count');
    card.append(node('div', value, 'value'), node('div', label, 'label'));
    return card;
  }

  function fillBatch(b) {
    $('b-name').textContent = b.name;
    const status = $('b-status');
    status.textContent = b.status;
    status.className = statusClass(b.status);
    status.dataset.status = b.status;
    view.dataset.batchStatus = b.status;
    view.dataset.batchId = b.id;
    $('b-id').textContent = b.id;
    $('b-source').textContent = b.source;
    $('b-created').textContent = when(b.createdAt);
    $('b-reason').textContent = b.reason || '';

    const links = $('b-links');
    links.replaceChildren();
    const addLink = (label, id) => {
      const a = node('a', id);
      a.href = `#/batches/${encodeURIComponent(id)}`;
      links.append(label, a, ' ');
    };
    if (b.parent) addLink('rerun of ', b.parent);
    for (const child of b.children) addLink('rerun: ', child);

    const valid = b.counts.valid || 0;
    $('b-bar').replaceChildren(...barSegments(b));
    const eta = b.etaSeconds ? ` · ETA ${duration(b.etaSeconds)}` : '';
    $('b-progress-text').textContent = `${b.done}/${valid} chats done · ${b.ratePerSecond}/s${eta}`;

    $('b-counts').replaceChildren(
      countCard('rows', b.counts.rows),
      countCard('valid chats', b.counts.valid),
      countCard('rejected rows', b.counts.rejected),
      countCard('duplicates', b.counts.duplicates),
      countCard('succeeded', b.counts.succeeded),
      countCard('failed', b.counts.failed),
      countCard('cancelled', b.counts.cancelled),
      countCard('pending', b.pending),
      countCard('API calls', b.attempts),
      countCard('429 answers', b.rateLimited),
    );

    for (const action of ['pause', 'resume', 'cancel']) $(`act-${action}`).hidden = !b.actions.includes(action);
    $('b-rerun').hidden = !b.actions.includes('rerun');

    const reasons = Object.entries(b.reasons).sort((x, y) => y[1] - x[1]);
    $('b-no-reasons').hidden = reasons.length > 0;
    $('b-reasons').replaceChildren(
      ...reasons.slice(0, 50).map(([reason, n]) => {
        const tr = node('tr');
        tr.append(node('td', n, 'num'), node('td', reason));
        return tr;
      }),
    );

    $('b-report-wait').hidden = b.reportReady;
    $('b-report-links').hidden = !b.reportReady;
    window.BulkCharts.outcomes($('chart-outcomes'), b);
  }

  // ---------- routing ----------

  function route() {
    leaveView();
    const match = /^#\/batches\/([^/]+)$/.exec(window.location.hash);
    leaveView = match ? renderBatch(decodeURIComponent(match[1])) : renderList();
    window.scrollTo(0, 0);
  }

  window.addEventListener('hashchange', route);
  route();
})();
