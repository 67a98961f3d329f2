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
    return [
      ['succeeded', 'bar-seg-ok'],
      ['failed', 'bar-seg-fail'],
      ['cancelled', 'bar-seg-cancel'],
    ].map(([kind, cls]) => {
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

  /** Kept while the page is open, so going back to the list keeps the operator's filter and page. */
  const listState = { status: '', kind: '', name: '', offset: 0 };
  const LIST_PAGE = 25;

  function fillOptions(select, values, current) {
    if (select.options.length > 1) return;
    for (const value of values) {
      const option = node('option', value);
      option.value = value;
      select.appendChild(option);
    }
    select.value = current;
  }

  function renderList() {
    view.replaceChildren($('list-template').content.cloneNode(true));
    setUpUpload();
    let timer;
    let alive = true;
    $('f-name').value = listState.name;
    const refresh = async () => {
      clearTimeout(timer);
      try {
        const query = new URLSearchParams({ limit: String(LIST_PAGE), offset: String(listState.offset) });
        for (const key of ['status', 'kind', 'name']) if (listState[key]) query.set(key, listState[key]);
        const page = await api(`/api/batches?${query}`);
        if (!alive) return;
        fillOptions($('f-status'), page.filters.statuses, listState.status);
        fillOptions($('f-kind'), page.filters.kinds, listState.kind);
        fillBatchRows(page.batches);
        const last = page.offset + page.batches.length;
        $('batches-range').textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}${page.truncated ? '+' : ''}` : '';
        $('batches-prev').disabled = page.offset === 0;
        $('batches-next').disabled = last >= page.total;
      } catch {
        /* shown on the next successful refresh; the list is not critical */
      }
      if (alive) timer = setTimeout(refresh, 3000);
    };
    $('batch-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      listState.status = $('f-status').value;
      listState.kind = $('f-kind').value;
      listState.name = $('f-name').value.trim();
      listState.offset = 0;
      refresh();
    });
    $('batches-prev').addEventListener('click', () => {
      listState.offset = Math.max(0, listState.offset - LIST_PAGE);
      refresh();
    });
    $('batches-next').addEventListener('click', () => {
      listState.offset += LIST_PAGE;
      refresh();
    });
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
        const family = node('span', null, 'id');
        if (b.parent) {
          const parent = node('a', b.parent);
          parent.href = `#/batches/${encodeURIComponent(b.parent)}`;
          family.append('rerun of ', parent);
        }
        for (const child of b.children) {
          const a = node('a', child);
          a.href = `#/batches/${encodeURIComponent(child)}`;
          family.append(' rerun: ', a);
        }
        if (family.childNodes.length) nameCell.appendChild(family);
        const statusCell = node('td');
        statusCell.appendChild(node('span', b.status, statusClass(b.status)));
        const progressCell = node('td', null, 'wide');
        const wrap = node('div', null, 'progress-cell');
        wrap.append(progressBar(b), node('span', `${b.done}/${b.counts.valid}`));
        progressCell.appendChild(wrap);
        tr.append(
          nameCell,
          node('td', b.kind),
          statusCell,
          progressCell,
          node('td', b.counts.succeeded, 'num'),
          node('td', b.counts.failed, 'num'),
          node('td', b.counts.rejected, 'num'),
          node('td', when(b.createdAt)),
        );
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
      for (const name of ['name', 'waba', 'defaultCountry']) data.append(name, form.elements[name].value);
      for (const name of ['force', 'dryRun', 'approve', 'captureAssignees']) data.append(name, form.elements[name].checked ? 'true' : 'false');
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
    for (const [linkId, file] of [
      ['dl-failed', 'failed.csv'],
      ['dl-rejected', 'rejected.csv'],
      ['dl-summary-md', 'summary.md'],
      ['dl-summary-json', 'summary.json'],
    ]) {
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
    let update = (batch) => {
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
        if (action === 'rerun' || action === 'restore') {
          window.location.hash = `#/batches/${encodeURIComponent(result.id)}`;
          return;
        }
        update(result.batch);
        follow();
      } catch (error) {
        showError(errorBox, error);
      }
    };
    let current = null;
    const pending = () => (current ? current.pending : 0);
    $('act-pause').addEventListener('click', () => {
      if (window.confirm(`Pause this batch? Its ${pending()} pending chat(s) wait until you resume it; chats in flight finish.`)) act('pause');
    });
    $('act-resume').addEventListener('click', () => {
      if (window.confirm(`Resume this batch? Its ${pending()} pending chat(s) are sent again.`)) act('resume');
    });
    $('act-cancel').addEventListener('click', () => {
      if (window.confirm(`Cancel this batch? Its ${pending()} pending chat(s) are recorded as cancelled; chats in flight finish.`)) act('cancel');
    });
    $('act-approve').addEventListener('click', () => {
      if (window.confirm(`Approve this batch? Its ${current ? current.counts.valid : 0} chat(s) are sent to DoubleTick now.`)) act('approve');
    });
    $('act-reject').addEventListener('click', () => {
      if (window.confirm(`Reject this batch? Nothing is sent: its ${current ? current.counts.valid : 0} chat(s) are recorded as cancelled.`)) act('reject');
    });
    $('act-rerun').addEventListener('click', async () => {
      const onlyReason = $('rerun-reason').value.trim();
      const includePermanent = $('rerun-permanent').checked;
      const query = new URLSearchParams({ limit: '1', class: includePermanent ? 'all' : 'transient', ...(onlyReason ? { reason: onlyReason } : {}) });
      let count;
      try {
        count = (await api(`${base}/failures?${query}`)).total;
      } catch (error) {
        return showError(errorBox, error);
      }
      const options = rerunOptions('rerun-name', 'rerun-dry');
      const what = options.dryRun ? 'Dry-run a rerun of' : 'Rerun';
      if (window.confirm(`${what} ${count} failed chat(s) of this batch as a new batch?`))
        act('rerun', { includePermanent, ...(onlyReason ? { onlyReason } : {}), ...options });
    });
    $('act-restore').addEventListener('click', () => {
      const n = current ? current.restorable || 0 : 0;
      const force = $('restore-force').checked;
      const options = rerunOptions('restore-name', 'restore-dry');
      const text =
        `${options.dryRun ? 'Dry-run a restore of' : 'Restore'} ${n} chat(s) of this batch to the agent each had before it was unassigned?` +
        ' A chat assigned to someone since is left with its new agent.' +
        (force ? ' (Restoring again: this batch was restored before.)' : '');
      if (window.confirm(text)) act('restore', { ...(force ? { force } : {}), ...options });
    });
    $('b-failures').href = `#/batches/${encodeURIComponent(id)}/failures`;
    const remember = update;
    update = (batch) => {
      current = batch;
      remember(batch);
    };

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

  /** A rerun or restore form's name and dry-run fields as the API's body takes them (`--name`, `--dry-run`). */
  function rerunOptions(nameId, dryId) {
    const name = $(nameId).value.trim();
    return { ...(name ? { name } : {}), dryRun: $(dryId).checked };
  }

  function countCard(label, value) {
    const card = node('div', null, 'count');
    card.append(node('div', value, 'value'), node('div', label, 'label'));
    return card;
  }

  /** The global API rate (fixed, or the adaptive limit's current and learned rates), when the server sent it. */
  function apiRateText(rate) {
    if (!rate) return '';
    if (rate.mode === 'fixed') return ` · API limit ${rate.limitPerSecond === 0 ? 'off' : `${rate.limitPerSecond}/s`}`;
    if (rate.currentPerSecond === null) return ` · API rate auto (nothing learned yet)`;
    return ` · API rate auto: now ${rate.currentPerSecond}/s, learned ${rate.learnedPerSecond}/s`;
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
    $('b-created-by').textContent = b.createdBy || '';
    $('b-created-by-wrap').hidden = !b.createdBy;
    $('b-audit').href = `#/audit?batch=${encodeURIComponent(b.id)}`;
    // The API's 429 pause is not a status (the batch still runs): shown beside the reason while it holds.
    const apiPause = b.pausedByApiUntil ? `Paused by the API until ${new Date(b.pausedByApiUntil).toTimeString().slice(0, 8)}` : '';
    $('b-reason').textContent = [b.reason, apiPause].filter(Boolean).join(' · ');

    const links = $('b-links');
    links.replaceChildren();
    const addLink = (label, id) => {
      const a = node('a', id);
      a.href = `#/batches/${encodeURIComponent(id)}`;
      links.append(label, a, ' ');
    };
    if (b.parent) addLink(b.kind === 'restore' ? 'restore of ' : 'rerun of ', b.parent);
    for (const child of b.children) addLink('rerun or restore: ', child);

    const valid = b.counts.valid || 0;
    $('b-bar').replaceChildren(...barSegments(b));
    const eta = b.etaSeconds ? ` · ETA ${duration(b.etaSeconds)}` : '';
    $('b-progress-text').textContent = `${b.done}/${valid} chats done · ${b.ratePerSecond}/s${eta}${apiRateText(b.apiRate)}`;

    $('b-counts').replaceChildren(
      countCard('rows', b.counts.rows),
      countCard('valid chats', b.counts.valid),
      countCard('rejected rows', b.counts.rejected),
      countCard('duplicates', b.counts.duplicates),
      countCard('succeeded', b.counts.succeeded),
      countCard('failed', b.counts.failed),
      countCard('cancelled', b.counts.cancelled),
      countCard('skipped', b.counts.skipped || 0),
      countCard('pending', b.pending),
      countCard('API calls', b.attempts),
      countCard('429 answers', b.rateLimited),
    );

    for (const action of ['pause', 'resume', 'cancel', 'approve', 'reject']) $(`act-${action}`).hidden = !b.actions.includes(action);
    const held = b.actions.includes('approve');
    $('b-held').hidden = !held;
    if (held) {
      $('b-held-chats').textContent = String(b.counts.valid);
      $('b-held-sample').replaceChildren(...(b.sample || []).map((chat) => node('li', chat)));
      $('b-held-expires').textContent = b.approvalExpiresAt ? `Rejected on its own at ${when(b.approvalExpiresAt)} unless approved first.` : '';
    }
    $('b-rerun').hidden = !b.actions.includes('rerun');
    $('b-restore').hidden = !b.actions.includes('restore');
    $('b-restorable').textContent = b.restorable ? `${b.restorable} chat(s) can go back to their previous agent` : '';
    $('b-failures-link').hidden = !(b.counts.failed > 0);

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

  // ---------- failed chats of a batch ----------

  /** Kept per batch while the page is open: the filter a rerun is made from. */
  const FAIL_PAGE = 50;

  function renderFailures(id) {
    view.replaceChildren($('failures-template').content.cloneNode(true));
    const base = `/api/batches/${encodeURIComponent(id)}`;
    $('fl-back').href = `#/batches/${encodeURIComponent(id)}`;
    $('fl-batch').textContent = id;
    const errorBox = $('fl-error');
    const state = { reason: '', cls: 'all', offset: 0 };
    let page = null;
    let alive = true;
    const query = (extra) => new URLSearchParams({ class: state.cls, ...(state.reason ? { reason: state.reason } : {}), ...extra });

    const reveal = async (row, offset, cell, button) => {
      errorBox.hidden = true;
      try {
        const full = await api(`${base}/failures/reveal?${query({ offset: String(offset), line: String(row.line) })}`);
        cell.textContent = full.chat;
        button.remove();
      } catch (error) {
        showError(errorBox, error);
      }
    };

    const load = async () => {
      errorBox.hidden = true;
      try {
        page = await api(`${base}/failures?${query({ offset: String(state.offset), limit: String(FAIL_PAGE) })}`);
      } catch (error) {
        return showError(errorBox, error);
      }
      if (!alive) return;
      view.dataset.failuresTotal = String(page.total);
      $('fl-count').textContent = `${page.total} failed chat(s) match this filter.`;
      $('fl-rows').replaceChildren(
        ...page.rows.map((row, i) => {
          const tr = node('tr');
          const chatCell = node('td', row.chat, 'chat');
          const action = node('td');
          const button = node('button', 'Reveal', 'small');
          button.type = 'button';
          button.setAttribute('aria-label', `Reveal the number on line ${row.line}`);
          button.addEventListener('click', () => reveal(row, page.offset + i, chatCell, button));
          action.appendChild(button);
          tr.append(
            node('td', row.line, 'num'),
            chatCell,
            node('td', row.failureClass),
            node('td', row.httpStatus || '—', 'num'),
            node('td', row.attempts, 'num'),
            node('td', row.reason, 'reason'),
            action,
          );
          return tr;
        }),
      );
      const last = page.offset + page.rows.length;
      $('fl-range').textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : '';
      $('fl-prev').disabled = page.offset === 0;
      $('fl-next').disabled = last >= page.total;
      const rerun = $('fl-rerun');
      rerun.textContent = `Rerun these ${page.total}`;
      rerun.disabled = !page.rerun || page.total === 0;
      $('fl-rerun-note').textContent = page.rerun
        ? `as a new batch: ${page.rerun.includePermanent ? 'permanent failures included' : 'transient failures only'}${page.rerun.onlyReason ? `, reason contains “${page.rerun.onlyReason}”` : ''}`
        : 'A rerun takes transient failures, or all of them: choose “all” or “transient” to rerun.';
    };

    $('fl-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      state.reason = $('fl-reason').value.trim();
      state.cls = $('fl-class').value;
      state.offset = 0;
      load();
    });
    $('fl-prev').addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - FAIL_PAGE);
      load();
    });
    $('fl-next').addEventListener('click', () => {
      state.offset += FAIL_PAGE;
      load();
    });
    $('fl-rerun').addEventListener('click', async () => {
      if (!page || !page.rerun) return;
      const options = rerunOptions('fl-rerun-name', 'fl-rerun-dry');
      if (!window.confirm(`${options.dryRun ? 'Dry-run a rerun of' : 'Rerun'} these ${page.total} failed chat(s) as a new batch?`)) return;
      try {
        const child = await postJson(`${base}/rerun`, { ...page.rerun, ...options });
        window.location.hash = `#/batches/${encodeURIComponent(child.id)}`;
      } catch (error) {
        showError(errorBox, error);
      }
    });
    api(base).then(
      (batch) => {
        if (alive) $('fl-heading').textContent = `Failed chats of ${batch.name}`;
      },
      () => {},
    );
    load();
    return () => {
      alive = false;
    };
  }

  // ---------- schedules ----------

  function scheduleSources(s) {
    return s.sources.length ? s.sources.join('\n') : '—';
  }

  function batchLinks(ids) {
    const span = node('span');
    ids.forEach((batchId, i) => {
      const a = node('a', batchId);
      a.href = `#/batches/${encodeURIComponent(batchId)}`;
      if (i > 0) span.append(', ');
      span.appendChild(a);
    });
    return span;
  }

  function renderSchedules() {
    view.replaceChildren($('schedules-template').content.cloneNode(true));
    const errorBox = $('sch-error');
    const status = $('sch-status');
    let alive = true;
    const say = (text, links) => {
      status.hidden = false;
      status.replaceChildren(node('span', text));
      if (links && links.length) status.append(' ', batchLinks(links));
    };
    const load = async () => {
      let list;
      try {
        list = await api('/api/schedules');
      } catch (error) {
        return showError(errorBox, error);
      }
      if (!alive) return;
      $('sch-none').hidden = list.schedules.length > 0;
      $('sch-rows').replaceChildren(...list.schedules.map((s) => scheduleRow(s, say, load)));
    };
    const scheduleRow = (s) => {
      const tr = node('tr');
      tr.dataset.schedule = s.name;
      const runs = node('td', null, 'runs');
      if (s.runs.length === 0) runs.textContent = 'no runs yet';
      const list = node('ul', null, 'plain');
      for (const run of s.runs.slice(0, 5)) {
        const li = node('li');
        li.append(
          node('span', `${when(run.tick)}${run.manual ? ' (run now)' : ''} `),
          node('span', run.outcome, statusClass(run.outcome === 'started' ? 'running' : run.outcome === 'failed' ? 'stopped' : 'cancelled')),
        );
        if (run.batchIds.length) li.append(' ', batchLinks(run.batchIds));
        li.title = run.message;
        list.appendChild(li);
      }
      if (s.runs.length) runs.appendChild(list);
      const actions = node('td', null, 'row-actions');
      const edit = node('a', 'Edit', 'button small');
      edit.href = `#/schedules/${encodeURIComponent(s.name)}/edit`;
      edit.setAttribute('aria-label', `Edit schedule ${s.name}`);
      const run = node('button', 'Run now', 'small');
      run.type = 'button';
      run.setAttribute('aria-label', `Run schedule ${s.name} now`);
      run.addEventListener('click', async () => {
        if (
          !window.confirm(
            `Run schedule ${s.name} now? It reads:\n${scheduleSources(s)}\nand unassigns every chat those sources select (overlap rule: ${s.overlap}).`,
          )
        )
          return;
        errorBox.hidden = true;
        run.disabled = true;
        try {
          const result = await postJson(`/api/schedules/${encodeURIComponent(s.name)}/run`, {});
          say(
            `Run of ${s.name}: ${result.run.outcome} — ${result.run.message}`,
            result.batches.map((b) => b.id),
          );
        } catch (error) {
          showError(errorBox, error);
        }
        run.disabled = false;
        load();
      });
      const remove = node('button', 'Remove', 'small danger');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove schedule ${s.name}`);
      remove.addEventListener('click', async () => {
        if (!window.confirm(`Remove schedule ${s.name}? No run is started any more; its batches and reports stay.`)) return;
        errorBox.hidden = true;
        try {
          await api(`/api/schedules/${encodeURIComponent(s.name)}`, { method: 'DELETE' });
          say(`Removed schedule ${s.name}.`);
        } catch (error) {
          showError(errorBox, error);
        }
        load();
      });
      actions.append(edit, run, remove);
      const whenCell = node('td');
      whenCell.append(node('code', s.cron), node('span', ` ${s.tz}`, 'muted'));
      tr.append(
        node('td', s.name, 'name'),
        whenCell,
        node('td', scheduleSources(s), 'sources'),
        node('td', s.overlap),
        node('td', s.nextRun ? when(s.nextRun) : 'not planned'),
        runs,
        actions,
      );
      return tr;
    };
    load();
    return () => {
      alive = false;
    };
  }

  const FORM_FIELDS = ['cron', 'tz', 'overlap', 'chatStatus', 'idleHours', 'tag', 'agent', 'waba', 'inbox', 'maxChats', 'maxShare'];

  function renderScheduleForm(name) {
    view.replaceChildren($('schedule-form-template').content.cloneNode(true));
    const form = $('sf-form');
    const errorBox = $('sf-error');
    const busy = $('sf-busy');
    let alive = true;
    const values = () => {
      const body = { name: $('sf-name').value.trim() };
      for (const field of FORM_FIELDS) body[field] = form.elements[field].value;
      body.captureAssignees = form.elements.captureAssignees.checked ? 'true' : '';
      return body;
    };
    api('/api/schedules').then(
      (list) => {
        if (!alive) return;
        fillOptions($('sf-chatStatus'), list.chatStatuses, '');
        if (name === undefined) return;
        const s = list.schedules.find((x) => x.name === name);
        if (!s) return showError(errorBox, new Error(`no schedule named "${name}"`));
        $('sf-heading').textContent = `Edit schedule ${s.name}`;
        $('sf-name').value = s.name;
        $('sf-name').readOnly = true;
        for (const field of FORM_FIELDS) form.elements[field].value = s.input[field];
        form.elements.captureAssignees.checked = s.input.captureAssignees === 'true';
      },
      (error) => showError(errorBox, error),
    );

    $('sf-preview').addEventListener('click', async () => {
      errorBox.hidden = true;
      busy.textContent = 'previewing: reading the sources (no chat is unassigned)…';
      $('sf-preview').disabled = true;
      try {
        showPreview(await postJson('/api/schedules/preview', values()));
      } catch (error) {
        showError(errorBox, error);
      }
      busy.textContent = '';
      $('sf-preview').disabled = false;
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errorBox.hidden = true;
      const { name: scheduleName, ...input } = values();
      try {
        await api(`/api/schedules/${encodeURIComponent(scheduleName)}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(input),
        });
        window.location.hash = '#/schedules';
      } catch (error) {
        showError(errorBox, error);
      }
    });
    return () => {
      alive = false;
    };
  }

  function showPreview(preview) {
    $('sf-preview-card').hidden = false;
    $('sf-preview-message').textContent = preview.message || 'no sources read';
    const body = $('sf-preview-body');
    body.replaceChildren();
    let chats = 0;
    for (const b of preview.batches) {
      chats += b.counts.valid;
      const block = node('div', null, 'preview-batch');
      block.append(
        node('h4', b.name),
        node(
          'p',
          `${b.source}: ${b.counts.valid} chat(s) would be unassigned (rows ${b.counts.rows}, rejected ${b.counts.rejected}, duplicates ${b.counts.duplicates}).`,
        ),
      );
      if (b.wouldSend.length) {
        const list = node('ul', null, 'sample');
        for (const s of b.wouldSend) list.appendChild(node('li', `${s.line ? `line ${s.line}: ` : ''}${s.chat}`));
        block.append(node('p', `First ${b.wouldSend.length}:`, 'muted'), list);
      }
      body.appendChild(block);
    }
    if (preview.definition.inbox) {
      const bad = preview.inboxFiles.filter((f) => f.error);
      body.appendChild(
        node(
          'p',
          `Inbox ${preview.definition.inbox.dir} holds ${preview.inboxFiles.length} file(s)${bad.length ? `, ${bad.length} of which would be rejected` : ''}.`,
          'inbox-count',
        ),
      );
      for (const f of bad) body.appendChild(node('p', `${f.file}: ${f.error}`, 'muted'));
    }
    body.prepend(node('p', `In all: ${chats} chat(s) selected now.`, 'preview-total'));
    view.dataset.previewChats = String(chats);
  }

  // ---------- routing ----------

  // ---------- audit trail ----------

  function auditDetails(details) {
    return Object.entries(details)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
  }

  /** Filters live in the hash (`#/audit?batch=…&actor=…&since=…`), so a batch page can link to its entries. */
  function renderAudit(query) {
    view.replaceChildren($('audit-template').content.cloneNode(true));
    const params = new URLSearchParams(query || '');
    // `audit --limit`: the latest n entries that match (the API's default when blank).
    const fields = ['batch', 'actor', 'since', 'limit'];
    for (const f of fields) $(`a-${f}`).value = params.get(f) || '';
    const errorBox = $('a-error');
    let alive = true;
    const load = async () => {
      errorBox.hidden = true;
      const q = new URLSearchParams();
      for (const f of fields) if (params.get(f)) q.set(f, params.get(f));
      let page;
      try {
        page = await api(`/api/audit?${q}`);
      } catch (error) {
        $('audit-rows').replaceChildren();
        return showError(errorBox, error);
      }
      if (!alive) return;
      $('audit-none').hidden = page.entries.length > 0;
      $('audit-rows').replaceChildren(
        ...page.entries.map((e) => {
          const tr = node('tr');
          tr.dataset.action = e.action;
          const batch = node('td');
          if (e.batchId) {
            const a = node('a', e.batchId);
            a.href = `#/batches/${encodeURIComponent(e.batchId)}`;
            batch.appendChild(a);
          }
          tr.append(
            node('td', when(e.at)),
            node('td', e.actor),
            node('td', e.from ? `${e.via} ${e.from}` : e.via),
            node('td', e.action),
            batch,
            node('td', auditDetails(e.details)),
          );
          return tr;
        }),
      );
    };
    $('audit-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const f of fields) if ($(`a-${f}`).value.trim()) next.set(f, $(`a-${f}`).value.trim());
      window.location.hash = `#/audit${next.toString() ? `?${next}` : ''}`;
    });
    load();
    return () => {
      alive = false;
    };
  }

  const ROUTES = [
    [/^#\/audit(?:\?(.*))?$/, (m) => renderAudit(m[1])],
    [/^#\/batches\/([^/]+)\/failures$/, (m) => renderFailures(decodeURIComponent(m[1]))],
    [/^#\/batches\/([^/]+)$/, (m) => renderBatch(decodeURIComponent(m[1]))],
    [/^#\/schedules$/, () => renderSchedules()],
    [/^#\/schedules\/new$/, () => renderScheduleForm(undefined)],
    [/^#\/schedules\/([^/]+)\/edit$/, (m) => renderScheduleForm(decodeURIComponent(m[1]))],
  ];

  function route() {
    leaveView();
    delete view.dataset.previewChats;
    delete view.dataset.failuresTotal;
    const hash = window.location.hash;
    const found = ROUTES.map(([pattern, render]) => [pattern.exec(hash), render]).find(([m]) => m);
    leaveView = found ? found[1](found[0]) : renderList();
    window.scrollTo(0, 0);
    // Keyboard users start on the new view's heading, not at the top of the old one.
    const heading = view.querySelector('h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }

  window.addEventListener('hashchange', route);
  route();
})();
