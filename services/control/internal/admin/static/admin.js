// cmmsflow admin page. Every datum comes from a token-authenticated JSON call
// (control's API under /v1/, the page's own routes under /admin/api/); the
// token lives in sessionStorage. The DOM is built with textContent only,
// but for the charts: SVG that control draws, parsed as XML (see chart).
(function () {
  'use strict';

  var TOKEN_KEY = 'cmmsflow.token';
  var POLL_MS = 2000;
  var MIN_LOADING_MS = 500; // a trigger's loading state stays visible at least this long
  var RUNS_PAGE_SIZE = 20;

  var state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    role: '', // the token's: admin or viewer
    view: '',
    pipelines: [],
    cards: {},
    runsTokens: [''], // page tokens of the pages seen, runsTokens[i] starts page i
    runsPage: 0,
    runsNext: '',
    timer: 0,
    generation: 0,
    logLevel: '', // the run view's step log filter: '' (every level), debug, info, warning, error
    logPage: { run: '', offset: 0 } // the run view's page of step lines: ?offset lines back from the newest
  };

  function $(id) { return document.getElementById(id); }

  // el builds an element: attrs (class, href, data-*, …) and children
  // (strings become text nodes).
  function el(tag, attrs) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    });
  }
  function append(parent, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(parent, x); }); return; }
    parent.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

  function showError(id, msg) {
    var e = $(id);
    if (!e) return;
    e.textContent = msg || '';
    e.hidden = !msg;
  }

  function fmtTime(s) {
    if (!s) return '—';
    var d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  }
  function fmtDuration(a, b) {
    if (!a) return '—';
    var ms = (b ? new Date(b) : new Date()) - new Date(a);
    if (!(ms >= 0)) return '—';
    if (ms < 1000) return ms + ' ms';
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + Math.round(s - m * 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  function fmtNumber(v) {
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    return v.toFixed(Math.abs(v) < 10 ? 4 : 2);
  }
  function badge(s) { return el('span', { 'class': 'state ' + (s || 'none'), text: s || 'none' }); }
  function runHref(id) { return '#run/' + encodeURIComponent(id); }
  function runLink(id) { return id ? el('a', { href: runHref(id), 'class': 'run-link mono', text: id }) : '—'; }
  function isActive(s) { return s === 'queued' || s === 'running'; }

  // ApiError carries the HTTP status and the API's message.
  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }
  ApiError.prototype.toString = function () { return this.message; };

  // api calls a JSON route with the token. A 401 logs out.
  function api(method, path, body, token) {
    var opts = { method: method, headers: { 'Authorization': 'Bearer ' + (token || state.token), 'Accept': 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (resp.ok) return data;
        var msg = (data && data.message) || (resp.status + ' ' + resp.statusText);
        if (resp.status === 401 && !token) logout('Your token was refused (401 unauthenticated): log in again.');
        if (resp.status === 403) msg = 'permission denied: this needs an admin token';
        if (resp.status === 429) msg = 'rate limit exceeded: wait a moment and try again';
        throw new ApiError(resp.status, msg);
      });
    }, function (err) {
      throw new ApiError(0, 'network error: ' + (err && err.message ? err.message : err));
    });
  }
  function errText(err) { return err instanceof ApiError ? err.message : String(err && err.message ? err.message : err); }

  // ---- login -------------------------------------------------------------

  function login(ev) {
    ev.preventDefault();
    var tok = $('token').value.trim();
    if (!tok) return;
    showError('login-error', '');
    $('login-submit').disabled = true;
    api('GET', '/v1/pipelines', undefined, tok).then(function () {
      state.token = tok;
      sessionStorage.setItem(TOKEN_KEY, tok);
      $('token').value = '';
      enter();
    }, function (err) {
      var msg = err.status === 401
        ? 'That token was not accepted (401 unauthenticated). Check it, or make a new one with `cmmsflow token`.'
        : 'Could not log in: ' + errText(err);
      showError('login-error', msg);
    }).then(function () { $('login-submit').disabled = false; });
  }

  function logout(msg) {
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    stopPolling();
    state.cards = {};
    state.role = '';
    clear($('pipelines'));
    clear($('kpi-tiles'));
    clear($('trend-charts'));
    clear($('run-detail')).removeAttribute('data-run');
    $('nav').hidden = true;
    document.querySelectorAll('.view').forEach(function (v) { v.hidden = true; });
    $('login-view').hidden = false;
    showError('login-error', msg || '');
  }

  // enter shows the page for the token: its role decides the admin-only
  // controls (the API refuses a viewer anyway).
  function enter() {
    $('login-view').hidden = true;
    $('nav').hidden = false;
    api('GET', '/admin/api/whoami').then(function (me) { state.role = (me && me.role) || ''; },
      function () { state.role = ''; }).then(route);
  }

  // ---- routing -----------------------------------------------------------

  // VIEW_ALIASES are older links' views: the pipelines and runs are on the
  // dashboard (#pipelines is their cards' anchor).
  var VIEW_ALIASES = { pipelines: 'dashboard' };

  function route() {
    if (!state.token) return;
    var h = location.hash.replace(/^#/, '');
    try { h = decodeURIComponent(h); } catch (e) { h = ''; }
    h = h || 'dashboard';
    var view = VIEW_ALIASES[h] || h, arg = '';
    if (h.indexOf('run/') === 0) { view = 'run'; arg = h.slice(4); }
    if (!$(view + '-view')) view = 'dashboard';
    state.view = view;
    state.generation++;
    stopPolling();
    document.querySelectorAll('.view').forEach(function (v) { v.hidden = v.id !== view + '-view'; });
    document.querySelectorAll('#nav a').forEach(function (a) {
      a.classList.toggle('active', a.getAttribute('data-view') === view);
    });
    switch (view) {
      case 'dashboard': loadOverview(); loadPipelinesAndRuns(); break;
      case 'run': loadRun(arg); break;
      case 'inbox': loadInbox(); break;
      case 'reports': loadReports(); break;
      case 'outbox': loadOutbox(); break;
      case 'models': loadModels(); loadMonitoring(); break;
      case 'alerts': loadAlerts(); break;
    }
  }

  function stopPolling() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = 0;
    $('refreshing').hidden = true;
  }
  // poll calls fn again after POLL_MS unless the view changed meanwhile.
  function poll(fn) {
    var gen = state.generation;
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      state.timer = 0;
      if (gen === state.generation && state.token) fn();
    }, POLL_MS);
  }

  // ---- pipelines and runs --------------------------------------------------

  function loadPipelinesAndRuns() {
    var gen = state.generation;
    return Promise.all([loadPipelines(), loadRuns()]).then(function (active) {
      if (gen !== state.generation) return;
      var running = active[0] || active[1];
      $('refreshing').hidden = !running;
      if (running) poll(loadPipelinesAndRuns);
    });
  }

  // loadPipelines returns whether a pipeline's last run is still active.
  function loadPipelines() {
    return api('GET', '/v1/pipelines').then(function (data) {
      showError('pipelines-error', '');
      state.pipelines = (data && data.pipelines) || [];
      var sel = $('runs-pipeline');
      if (sel.options.length === 1) {
        state.pipelines.forEach(function (p) { sel.appendChild(el('option', { value: p.id, text: p.id })); });
      }
      var active = false;
      state.pipelines.forEach(function (p) {
        renderCard(p);
        if (p.last_run && isActive(p.last_run.state)) active = true;
      });
      return active;
    }, function (err) {
      showError('pipelines-error', 'Could not load the pipelines: ' + errText(err));
      return false;
    });
  }

  // renderCard creates a pipeline's card once and updates its fields, so a
  // refresh keeps the trigger's message.
  function renderCard(p) {
    var c = state.cards[p.id];
    if (!c) {
      c = { f: {} };
      var fields = ['schedule', 'next', 'last', 'now', 'steps'];
      var dl = el('dl');
      var labels = { schedule: 'Schedule', next: 'Next run', last: 'Last run', now: 'Runs now', steps: 'Steps' };
      fields.forEach(function (k) {
        c.f[k] = el('dd', { 'class': k });
        dl.appendChild(el('dt', { text: labels[k] }));
        dl.appendChild(c.f[k]);
      });
      c.trigger = el('button', { type: 'button', 'class': 'trigger primary', text: 'Trigger' });
      c.pause = el('input', { type: 'checkbox', 'class': 'pause-toggle' });
      c.status = el('div', { 'class': 'trigger-status', role: 'status', 'aria-live': 'polite' });
      c.desc = el('p', { 'class': 'desc' });
      c.aliases = el('p', { 'class': 'aliases muted' });
      c.missed = el('ul', { 'class': 'missed' });
      c.params = paramsForm(p);
      c.backfillButton = el('button', { type: 'button', 'class': 'backfill-open', text: 'Backfill…' });
      c.backfill = backfillForm(p.id, c);
      c.root = el('article', { 'class': 'card', 'data-pipeline': p.id },
        el('h3', { text: p.id }), c.aliases, c.desc, dl, c.missed, c.params.root,
        el('div', { 'class': 'actions' }, c.trigger, el('label', null, c.pause, ' Paused'), c.backfillButton),
        c.backfill.root, c.status);
      c.trigger.addEventListener('click', function () { trigger(p.id, c); });
      c.backfillButton.addEventListener('click', function () { c.backfill.root.hidden = !c.backfill.root.hidden; });
      c.pause.addEventListener('change', function () { setPaused(p.id, c); });
      state.cards[p.id] = c;
      $('pipelines').appendChild(c.root);
    }
    c.desc.textContent = p.description || '';
    clear(c.f.schedule).appendChild(el('span', null, p.schedule ? el('code', { text: p.schedule }) : 'manual only',
      p.schedule ? ' (' + (p.time_zone || 'UTC') + ')' : ''));
    c.f.next.textContent = fmtTime(p.next_run) + (p.paused ? ' (paused: will be skipped)' : '');
    clear(c.f.last);
    if (p.last_run) {
      append(c.f.last, [badge(p.last_run.state), ' ', runLink(p.last_run.run_id)]);
    } else {
      append(c.f.last, badge('none'));
    }
    c.f.steps.textContent = (p.steps || []).join(' → ');
    c.f.now.textContent = (p.active_runs || 0) + ' running, ' + (p.queued_runs || 0) + ' queued' +
      (p.max_active_runs ? ' · at most ' + p.max_active_runs + ' at once' : '');
    c.aliases.textContent = (p.aliases || []).length ? 'also answers to ' + p.aliases.join(', ') : '';
    renderMissed(c.missed, p.missed_ticks || []);
    c.backfillButton.hidden = state.role !== 'admin'; // backfill is admin-only
    if (c.backfillButton.hidden) c.backfill.root.hidden = true;
    c.pause.checked = !!p.paused;
    c.root.setAttribute('data-paused', p.paused ? 'true' : 'false');
  }

  function setStatus(c, kind, children) {
    c.status.className = 'trigger-status' + (kind ? ' ' + kind : '');
    clear(c.status);
    append(c.status, children);
  }

  function trigger(id, c) {
    c.trigger.disabled = true;
    c.trigger.textContent = 'Triggering…';
    setStatus(c, 'loading', [el('span', { 'class': 'spinner', 'aria-hidden': 'true' }), 'Queuing a run of ' + id + '…']);
    var started = Date.now();
    var wait = function (v) {
      var left = MIN_LOADING_MS - (Date.now() - started);
      return new Promise(function (resolve) { setTimeout(function () { resolve(v); }, Math.max(0, left)); });
    };
    var conf = c.params.read();
    if (!conf) {
      setStatus(c, 'failure error', 'Fix the parameters first.');
      c.trigger.disabled = false;
      c.trigger.textContent = 'Trigger';
      return;
    }
    api('POST', '/v1/pipelines/' + encodeURIComponent(id) + ':trigger', { conf: conf })
      .then(wait, function (err) { return wait().then(function () { throw err; }); })
      .then(function (data) {
        var run = (data && data.run) || {};
        setStatus(c, 'success success-msg', [data && data.created === false ? 'Run already queued: ' : 'Run queued: ', runLink(run.run_id)]);
        if (state.view === 'dashboard') { state.runsTokens = ['']; state.runsPage = 0; loadPipelinesAndRuns(); }
      }, function (err) {
        setStatus(c, 'failure error', 'Trigger failed: ' + errText(err));
      })
      .then(function () {
        c.trigger.disabled = false;
        c.trigger.textContent = 'Trigger';
      });
  }

  // renderMissed lists a pipeline's missed cron ticks: alerted, and caught
  // up (with the run) or not.
  function renderMissed(ul, missed) {
    clear(ul);
    ul.hidden = missed.length === 0;
    missed.forEach(function (m) {
      append(ul, el('li', { 'class': 'missed-tick' }, '⚠ missed tick ' + fmtTime(m.tick) + ' — ',
        m.caught_up ? ['caught up: ', runLink(m.run_id)] : (m.run_id ? ['run later: ', runLink(m.run_id)] : 'not caught up (catchup off)')));
    });
  }

  // confChecks are the client-side checks of the conf formats; the server
  // checks again (and knows how many weeks a year has).
  var confChecks = {
    date: function (v) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) return 'not a date YYYY-MM-DD';
      var d = new Date(v + 'T00:00:00Z');
      return !isNaN(d) && d.toISOString().slice(0, 10) === v ? '' : 'not a calendar day';
    },
    iso_week: function (v) {
      var m = /^(\d{4})-W(\d{2})$/.exec(v);
      return m && +m[2] >= 1 && +m[2] <= 53 ? '' : 'not an ISO week YYYY-Www';
    }
  };

  // paramsForm is the trigger's parameters, one field per conf key of the
  // pipeline; read returns the conf to send, or null after marking a bad
  // field.
  function paramsForm(p) {
    var keys = p.conf_keys || [];
    var root = el('details', { 'class': 'params' }, el('summary', { text: 'Parameters' }));
    root.hidden = keys.length === 0;
    var inputs = keys.map(function (k) {
      var input = el('input', { name: k.name, 'class': 'param', placeholder: k.format === 'date' ? 'YYYY-MM-DD' : 'YYYY-Www', spellcheck: 'false' });
      var msg = el('span', { 'class': 'field-error', role: 'alert' });
      append(root, el('label', { title: k.description }, el('code', { text: k.name }), ' ', input, ' ', el('span', { 'class': 'muted', text: k.description }), msg));
      return { key: k, input: input, msg: msg };
    });
    return {
      root: root,
      read: function () {
        var conf = {}, ok = true;
        inputs.forEach(function (f) {
          var v = f.input.value.trim();
          var problem = v && confChecks[f.key.format] ? confChecks[f.key.format](v) : '';
          f.msg.textContent = problem ? ' ' + f.key.name + ': ' + problem : '';
          f.input.setAttribute('aria-invalid', problem ? 'true' : 'false');
          if (problem) ok = false;
          else if (v) conf[f.key.name] = v;
        });
        if (!ok) root.open = true;
        return ok ? conf : null;
      }
    };
  }

  // backfillForm creates the scheduled runs of a range of days: Preview is
  // a dry run, Create queues them.
  function backfillForm(id, c) {
    var from = el('input', { type: 'date', 'class': 'backfill-from' });
    var to = el('input', { type: 'date', 'class': 'backfill-to' });
    var preview = el('button', { type: 'button', 'class': 'backfill-preview', text: 'Preview' });
    var create = el('button', { type: 'button', 'class': 'backfill-create primary', text: 'Create runs' });
    var out = el('div', { 'class': 'backfill-status', role: 'status', 'aria-live': 'polite' });
    var root = el('div', { 'class': 'backfill' }, el('strong', { text: 'Backfill' }), ' one run per cron tick from ',
      from, ' to ', to, ' ', preview, ' ', create, out);
    root.hidden = true;
    function call(dry) {
      if (!from.value || !to.value) { out.className = 'backfill-status error'; out.textContent = 'Choose the first and the last day.'; return; }
      preview.disabled = create.disabled = true;
      api('POST', '/v1/pipelines/' + encodeURIComponent(id) + ':backfill', { from_date: from.value, to_date: to.value, dry_run: dry })
        .then(function (r) {
          var ticks = (r.ticks || []).length, created = (r.created_run_ids || []).length;
          out.className = 'backfill-status success-msg';
          out.textContent = dry
            ? ticks + ' ticks; ' + (r.existing || 0) + ' have their run, ' + (ticks - (r.existing || 0)) + ' would be created.'
            : created + ' runs queued, ' + (r.existing || 0) + ' ticks had their run.';
          if (!dry) { state.runsTokens = ['']; state.runsPage = 0; loadPipelinesAndRuns(); }
        }, function (err) {
          out.className = 'backfill-status error';
          out.textContent = 'Backfill failed: ' + errText(err);
        })
        .then(function () { preview.disabled = create.disabled = false; });
    }
    preview.addEventListener('click', function () { call(true); });
    create.addEventListener('click', function () { call(false); });
    return { root: root };
  }

  function setPaused(id, c) {
    var want = c.pause.checked;
    c.pause.disabled = true;
    api('POST', '/v1/pipelines/' + encodeURIComponent(id) + (want ? ':pause' : ':unpause'), {})
      .then(function (p) {
        renderCard(p);
        setStatus(c, 'success-msg', want ? 'Paused: scheduled runs are skipped.' : 'Unpaused: scheduled runs resume.');
      }, function (err) {
        c.pause.checked = !want;
        setStatus(c, 'failure error', (want ? 'Pause' : 'Unpause') + ' failed: ' + errText(err));
      })
      .then(function () { c.pause.disabled = false; });
  }

  // loadRuns returns whether a listed run is still active.
  function loadRuns() {
    var q = '?page_size=' + RUNS_PAGE_SIZE;
    var pl = $('runs-pipeline').value, st = $('runs-state').value, tok = state.runsTokens[state.runsPage];
    if (pl) q += '&pipeline=' + encodeURIComponent(pl);
    if (st) q += '&state=' + encodeURIComponent(st);
    if (tok) q += '&page_token=' + encodeURIComponent(tok);
    return api('GET', '/v1/runs' + q).then(function (data) {
      showError('runs-error', '');
      var runs = (data && data.runs) || [];
      state.runsNext = (data && data.next_page_token) || '';
      var body = clear($('runs').tBodies[0]);
      var active = false;
      runs.forEach(function (r) {
        if (isActive(r.state)) active = true;
        body.appendChild(el('tr', { 'data-run': r.run_id, 'data-state': r.state },
          el('td', null, runLink(r.run_id)), el('td', { text: r.pipeline }), el('td', null, badge(r.state)),
          el('td', { text: r.source }), el('td', { text: fmtTime(r.queued_at) }), el('td', { text: fmtTime(r.started_at) }),
          el('td', { text: fmtDuration(r.started_at, r.ended_at) }), el('td', { 'class': 'err', text: r.error || '' })));
      });
      if (!runs.length) body.appendChild(el('tr', null, el('td', { colspan: 8, 'class': 'muted', text: 'No runs.' })));
      $('runs-newer').disabled = state.runsPage === 0;
      $('runs-older').disabled = !state.runsNext;
      $('runs-page').textContent = 'page ' + (state.runsPage + 1);
      return active;
    }, function (err) {
      showError('runs-error', 'Could not load the runs: ' + errText(err));
      return false;
    });
  }

  function runsFilterChanged() {
    state.runsTokens = [''];
    state.runsPage = 0;
    state.generation++;
    stopPolling();
    loadPipelinesAndRuns();
  }
  function runsPage(delta) {
    if (delta > 0) {
      if (!state.runsNext) return;
      state.runsTokens[state.runsPage + 1] = state.runsNext;
    }
    state.runsPage = Math.max(0, state.runsPage + delta);
    state.runsTokens.length = state.runsPage + 1;
    state.generation++;
    stopPolling();
    loadPipelinesAndRuns();
  }

  // ---- run detail -------------------------------------------------------------

  function loadRun(id) {
    var gen = state.generation;
    var root = $('run-detail');
    if (root.getAttribute('data-run') !== id) clear(root).removeAttribute('data-run'); // not another run's page meanwhile
    return Promise.all([
      api('GET', '/v1/runs/' + encodeURIComponent(id)),
      api('GET', '/admin/api/runs/' + encodeURIComponent(id) + '/logs?level=' + encodeURIComponent(state.logLevel) +
        '&offset=' + (state.logPage.run === id ? state.logPage.offset : 0)).catch(function (err) { return { error: errText(err) }; })
    ]).then(function (res) {
      if (gen !== state.generation) return;
      showError('run-error', '');
      renderRun(res[0], res[1]);
      if (isActive(res[0].state) || (res[0].steps || []).some(function (s) { return isActive(s.state) || s.state === 'up_for_retry'; })) {
        $('refreshing').hidden = false;
        poll(function () { loadRun(id); });
      }
    }, function (err) {
      if (gen !== state.generation) return;
      clear($('run-detail'));
      showError('run-error', 'Could not load run ' + id + ': ' + errText(err));
    });
  }

  function renderRun(run, logs) {
    var root = clear($('run-detail'));
    root.setAttribute('data-run', run.run_id);
    root.setAttribute('data-state', run.state);
    var conf = Object.keys(run.conf || {}).map(function (k) { return k + '=' + run.conf[k]; }).join(', ');
    var cancel = null;
    if (isActive(run.state)) {
      cancel = el('button', { type: 'button', id: 'cancel-run', text: 'Cancel run' });
      cancel.addEventListener('click', function () {
        cancel.disabled = true;
        api('POST', '/v1/runs/' + encodeURIComponent(run.run_id) + ':cancel', {}).then(function () {
          loadRun(run.run_id);
        }, function (err) { showError('run-error', 'Cancel failed: ' + errText(err)); cancel.disabled = false; });
      });
    }
    append(root, [
      el('h2', null, 'Run ', el('span', { 'class': 'mono', text: run.run_id }), ' ', badge(run.state)),
      el('p', { 'class': 'kv' },
        'Pipeline ', el('strong', { text: run.pipeline }), ' · ', run.source, ' · logical date ', fmtTime(run.logical_date),
        ' · queued ', fmtTime(run.queued_at), ' · started ', fmtTime(run.started_at), ' · ended ', fmtTime(run.ended_at),
        ' · took ', fmtDuration(run.started_at, run.ended_at), conf ? ' · conf ' + conf : '',
        run.state_set_by ? el('span', { id: 'state-set-by', text: ' · state set by ' + run.state_set_by }) : null),
      run.error ? el('p', { 'class': 'error', text: run.error }) : null,
      traceLine(logs || {}),
      cancel,
      markControl(run),
      retryControl(run),
      graph(run.steps || [])
    ]);
    var stepLinks = {};
    ((logs || {}).steps || []).forEach(function (s) { stepLinks[s.step] = s; });
    var steps = el('div', { 'class': 'steps' });
    (run.steps || []).forEach(function (s) { steps.appendChild(stepCard(s, stepLinks[s.step], logs || {})); });
    root.appendChild(steps);
    if (logs && logs.logs_backend) root.appendChild(stepLogsSection(run, logs));
    root.appendChild(logsSection(logs || {}));
  }

  // stepLogsSection shows each step's own log lines (the lines its service
  // logged while handling the run), with a level filter.
  function stepLogsSection(run, logs) {
    var level = el('select', { id: 'log-level', 'aria-label': 'level' });
    [['', 'every level'], ['debug', 'debug and up'], ['info', 'info and up'], ['warning', 'warning and up'], ['error', 'error']].forEach(function (o) {
      level.appendChild(el('option', { value: o[0], text: o[1], selected: state.logLevel === o[0] }));
    });
    level.addEventListener('change', function () {
      state.logLevel = level.value;
      state.logPage = { run: '', offset: 0 };
      state.generation++;
      stopPolling();
      loadRun(run.run_id);
    });
    var sec = el('section', { id: 'step-logs' }, el('h2', { text: 'Step logs' }),
      el('p', { 'class': 'kv' }, 'The lines each step\'s service logged while handling this run (' +
        (logs.logs_backend === 'cloudlogging' ? 'Cloud Logging' : 'local log files') + '). Show ', level));
    (logs.steps || []).forEach(function (s) { sec.appendChild(stepLog(s)); });
    sec.appendChild(logPager(run, logs));
    return sec;
  }

  // logPager pages back through the steps' lines (a page is at most 200 lines
  // and 1 MiB per request): Older lines goes to the furthest next_offset of
  // the steps, Newest lines back to the start.
  function logPager(run, logs) {
    var next = 0, offset = state.logPage.run === run.run_id ? state.logPage.offset : 0;
    (logs.steps || []).forEach(function (s) { next = Math.max(next, s.next_offset || 0); });
    if (!next && !offset) return el('span');
    function go(to) {
      return function (e) {
        e.preventDefault();
        state.logPage = { run: run.run_id, offset: to };
        state.generation++;
        stopPolling();
        loadRun(run.run_id);
      };
    }
    var p = el('p', { 'class': 'kv' });
    if (next) { var older = el('a', { href: '#', text: 'Older lines' }); older.addEventListener('click', go(next)); p.appendChild(older); }
    if (offset) { var newest = el('a', { href: '#', text: 'Newest lines' }); newest.addEventListener('click', go(0)); p.appendChild(el('span', { text: next ? ' · ' : '' })); p.appendChild(newest); }
    return p;
  }

  // CONTEXT_ATTRS are on every line of a run's step (the run, the event, the
  // trace): shown on hover, not in the line.
  var CONTEXT_ATTRS = ['run_id', 'pipeline', 'step', 'event_id', 'event_type', 'logging.googleapis.com/trace',
    'logging.googleapis.com/spanId', 'logging.googleapis.com/trace_sampled'];

  function attrText(attrs, keys) {
    return keys.map(function (k) {
      var v = attrs[k];
      return k + '=' + (typeof v === 'string' ? v : JSON.stringify(v));
    }).join(' ');
  }

  function stepLog(s) {
    var box = el('div', { 'class': 'log', id: 'step-log-' + s.step, 'data-step': s.step });
    (s.lines || []).forEach(function (l) {
      var a = l.attrs || {}, keys = Object.keys(a).sort();
      var own = attrText(a, keys.filter(function (k) { return CONTEXT_ATTRS.indexOf(k) < 0; }));
      box.appendChild(el('div', { 'class': (l.level || '').toLowerCase(), 'data-try': l['try'], title: attrText(a, keys) },
        fmtTime(l.time) + '  ' + l.level + '  try ' + l['try'] + '  ' + l.message, own ? el('span', { 'class': 'muted', text: '  ' + own }) : null));
    });
    if (!(s.lines || []).length) box.appendChild(el('div', { text: s.error ? '' : 'No log lines.' }));
    return el('div', { 'class': 'step-log' }, el('h3', { text: s.step }),
      s.error ? el('p', { 'class': 'error', text: s.error }) : null,
      s.dropped ? el('p', { 'class': 'muted', text: s.dropped + ' older lines not shown.' }) : null,
      s.partial ? el('p', { 'class': 'muted', text: 'The log reader reached its bound: lines may be missing.' }) : null,
      box);
  }

  // retryControl is the admin's "Re-run from…": a finished run runs again
  // from the chosen step (by default the failed one), reusing the outputs of
  // the steps before it. A refusal shows the API's reason.
  function retryControl(run) {
    var steps = run.steps || [];
    if (state.role !== 'admin' || isActive(run.state) || !steps.length) return null;
    var pick = steps.filter(function (s) { return s.state === 'failed'; })[0] ||
      steps.filter(function (s) { return s.state !== 'success'; })[0] || steps[0];
    var sel = el('select', { id: 'retry-step' });
    steps.forEach(function (s) { sel.appendChild(el('option', { value: s.step, text: s.step, selected: s.step === pick.step })); });
    var btn = el('button', { type: 'button', id: 'retry-run', text: 'Re-run' });
    btn.addEventListener('click', function () {
      btn.disabled = true;
      showError('run-error', '');
      api('POST', '/v1/runs/' + encodeURIComponent(run.run_id) + ':retry', { from_step: sel.value }).then(function () {
        loadRun(run.run_id);
      }, function (err) { showError('run-error', 'Re-run refused: ' + errText(err)); btn.disabled = false; });
    });
    return el('p', { 'class': 'retry', id: 'retry' }, el('label', null, 'Re-run from ', sel), ' ', btn);
  }

  // markControl is the admin's "Mark success" / "Mark failed": the run's
  // state set by hand (SetRunState); a running run is stopped. A refusal
  // shows the API's reason.
  function markControl(run) {
    if (state.role !== 'admin') return null;
    var box = el('p', { 'class': 'mark', id: 'mark' });
    [['success', 'Mark success'], ['failed', 'Mark failed']].forEach(function (m) {
      if (run.state === m[0]) return;
      var btn = el('button', { type: 'button', id: 'mark-' + m[0], text: m[1] });
      btn.addEventListener('click', function () {
        btn.disabled = true;
        showError('run-error', '');
        api('POST', '/v1/runs/' + encodeURIComponent(run.run_id) + ':setState', { state: m[0] }).then(function () {
          loadRun(run.run_id);
        }, function (err) { showError('run-error', 'Mark ' + m[0] + ' refused: ' + errText(err)); btn.disabled = false; });
      });
      box.appendChild(btn);
    });
    return box;
  }

  // graph draws the step chain as boxes joined by arrows, coloured by state.
  function graph(steps) {
    var w = 170, h = 60, gap = 50, pad = 6;
    var width = Math.max(1, steps.length) * (w + gap) - gap + 2 * pad;
    var g = svg('svg', { 'class': 'graph', id: 'run-graph', width: width, height: h + 2 * pad, viewBox: '0 0 ' + width + ' ' + (h + 2 * pad), role: 'img', 'aria-label': 'step graph' });
    steps.forEach(function (s, i) {
      var x = pad + i * (w + gap), y = pad;
      if (i > 0) {
        var x0 = x - gap + 4, x1 = x - 4, ym = y + h / 2;
        g.appendChild(svg('line', { x1: x0, y1: ym, x2: x1 - 8, y2: ym }));
        g.appendChild(svg('path', { 'class': 'head', d: 'M' + (x1 - 10) + ' ' + (ym - 6) + ' L' + x1 + ' ' + ym + ' L' + (x1 - 10) + ' ' + (ym + 6) + ' Z' }));
      }
      g.appendChild(svg('g', { 'class': 'node ' + s.state, 'data-step': s.step, 'data-state': s.state },
        svg('title', { text: s.step + ': ' + s.state }),
        svg('rect', { x: x, y: y, width: w, height: h, rx: 8 }),
        svg('text', { x: x + 12, y: y + 24, text: s.step }),
        svg('text', { x: x + 12, y: y + 44, 'class': 'st', text: s.state + (s.attempts > 1 ? ' · attempt ' + s.attempts : '') })));
    });
    return g;
  }

  // traceLine shows the run's trace id (every service's spans and log lines
  // of the run carry it), linked to the trace viewer when there is one.
  function traceLine(logs) {
    if (!logs.trace_id) return null;
    var id = el('span', { 'class': 'mono', id: 'run-trace-id', text: logs.trace_id });
    return el('p', { 'class': 'kv', id: 'run-trace' }, 'Trace ',
      safeURL(logs.trace_url) ? el('a', { href: logs.trace_url, target: '_blank', rel: 'noopener noreferrer', id: 'run-trace-link' }, id) : id);
  }

  function safeURL(u) { return typeof u === 'string' && /^https?:\/\//.test(u); }

  // stepLogsLinks open the step's logs in Cloud Logging and show its own
  // lines below, or (with no log reader) highlight its transitions in the
  // run's log.
  function stepLogsLinks(s, links, logs) {
    var out = [];
    if (links && safeURL(links.cloud_logging_url)) {
      out.push(el('a', { href: links.cloud_logging_url, target: '_blank', rel: 'noopener noreferrer', 'class': 'step-logs', text: 'Logs in Cloud Logging' }));
    }
    if (logs.error) return out;
    if (logs.logs_backend) {
      var own = el('a', { href: '#', 'class': 'step-logs own', 'data-step': s.step, text: 'Step log (' + ((links && links.lines) || []).length + ' lines)' });
      own.addEventListener('click', function (ev) {
        ev.preventDefault();
        ($('step-log-' + s.step) || $('step-logs')).scrollIntoView({ block: 'center' });
      });
      out.push(own);
      return out;
    }
    if (out.length) return out;
    var a = el('a', { href: '#', 'class': 'step-logs', 'data-step': s.step, text: 'Log lines' });
    a.addEventListener('click', function (ev) {
      ev.preventDefault();
      var lines = document.querySelectorAll('#run-logs .log div');
      var first = null;
      Array.prototype.forEach.call(lines, function (l) {
        var mine = l.getAttribute('data-step') === s.step;
        l.classList.toggle('highlight', mine);
        if (mine && !first) first = l;
      });
      (first || $('run-logs')).scrollIntoView({ block: 'center' });
    });
    return [a];
  }

  function stepCard(s, links, logs) {
    var figs = Object.keys(s.figures || {}).sort();
    var table = null;
    if (figs.length) {
      table = el('table', { 'class': 'figures' });
      figs.forEach(function (k) { table.appendChild(el('tr', null, el('td', { 'class': 'muted', text: k }), el('td', { 'class': 'mono', text: fmtNumber(s.figures[k]) }))); });
    }
    return el('section', { 'class': 'step ' + s.state, 'data-step': s.step, 'data-state': s.state },
      el('h3', null, (s.position + 1) + '. ' + s.step + ' ', badge(s.state)),
      el('div', { 'class': 'kv' }, 'attempts ', String(s.attempts || 0), ' · started ', fmtTime(s.started_at),
        ' · ended ', fmtTime(s.ended_at), ' · took ', fmtDuration(s.started_at, s.ended_at)),
      s.summary ? el('p', { 'class': 'summary', text: s.summary }) : null,
      s.error ? el('p', { 'class': 'error', text: s.error }) : null,
      s.state_set_by ? el('p', { 'class': 'muted set-by', text: 'state set by ' + s.state_set_by }) : null,
      table,
      stepLogsLinks(s, links, logs));
  }

  function logsSection(logs) {
    var sec = el('section', { id: 'run-logs' }, el('h2', { text: 'Logs' }));
    if (logs.error) { sec.appendChild(el('p', { 'class': 'error', text: 'Could not load the logs: ' + logs.error })); return sec; }
    if (logs.cloud_logging_url) {
      sec.appendChild(el('p', null, el('a', { href: logs.cloud_logging_url, target: '_blank', rel: 'noopener noreferrer', text: 'Open this run\'s logs in Cloud Logging' })));
    } else {
      sec.appendChild(el('p', { 'class': 'muted', text: 'Step transitions, step errors and dead letters recorded for this run' +
        (logs.logs_backend ? ' (each step\'s own lines are under Step logs).' : ' (control has no log reader: the services\' lines are in their output).') }));
    }
    var lines = logs.lines || [];
    var pre = el('div', { 'class': 'log' });
    lines.forEach(function (l) {
      pre.appendChild(el('div', { 'class': l.level, 'data-step': l.step }, fmtTime(l.time) + '  ' + l.level.toUpperCase() + '  [' + l.step + ']  ' + l.message));
    });
    if (!lines.length) pre.appendChild(el('div', { text: 'No log lines yet.' }));
    sec.appendChild(pre);
    var dl = logs.deliveries || [];
    if (dl.length) {
      var t = el('table', { id: 'deliveries' }, el('thead', null, el('tr', null, ['Created', 'Channel', 'Recipient', 'Subject', 'Status', 'Error'].map(function (x) { return el('th', { text: x }); }))));
      var b = el('tbody');
      dl.forEach(function (d) {
        b.appendChild(el('tr', null, el('td', { text: fmtTime(d.created_at) }), el('td', { text: d.channel }), el('td', { text: d.recipient }),
          el('td', { text: d.subject }), el('td', null, el('span', { 'class': 'state ' + (d.status === 'sent' ? 'success' : d.status === 'failed' ? 'failed' : 'pending'), text: d.status })), el('td', { 'class': 'err', text: d.error })));
      });
      t.appendChild(b);
      sec.appendChild(el('h3', { text: 'Notifications sent by this run' }));
      sec.appendChild(t);
    }
    return sec;
  }

  // ---- other views -------------------------------------------------------------

  function fill(tableId, rows, cols, empty) {
    var body = clear($(tableId).tBodies[0]);
    rows.forEach(function (r) { body.appendChild(el('tr', null, cols(r).map(function (c) { return el('td', null, c); }))); });
    if (!rows.length) body.appendChild(el('tr', null, el('td', { colspan: $(tableId).tHead.rows[0].cells.length, 'class': 'muted', text: empty })));
  }

  // loadTable fills the table tableId with the list under key of what req
  // answers (cols and empty as for fill; empty may be a function of the
  // answer), or says in tableId + '-error' that it could not load the what.
  function loadTable(tableId, req, key, what, cols, empty) {
    req.then(function (data) {
      showError(tableId + '-error', '');
      fill(tableId, (data && data[key]) || [], cols, typeof empty === 'function' ? empty(data) : empty);
    }, function (err) { showError(tableId + '-error', 'Could not load the ' + what + ': ' + errText(err)); });
  }

  function loadInbox() {
    var tech = $('inbox-tech').value;
    var req = tech
      ? api('GET', '/v1/technicians/' + encodeURIComponent(tech) + '/notifications?page_size=50')
      : api('GET', '/admin/api/notifications?limit=50');
    loadTable('inbox', req, 'notifications', 'notifications', function (n) {
      return [fmtTime(n.created_at), n.technician || ('#' + n.technician_id), n.kind,
        el('details', null, el('summary', { text: n.subject }), el('pre', { text: n.body })),
        n.status, n.read_at ? fmtTime(n.read_at) : 'unread', runLink(n.run_id)];
    }, 'No notifications.');
  }

  function loadReports() {
    loadTable('reports', api('GET', '/admin/api/reports'), 'reports', 'reports', function (r) {
      var links = (r.links || []).map(function (l, i) {
        return [i ? ' · ' : '', l.url ? el('a', { href: l.url, target: '_blank', rel: 'noopener noreferrer', title: l.uri, text: l.name }) : el('span', { title: l.uri, text: l.name })];
      });
      var kpis = (r.headline || []).filter(function (t) { return t.value !== null; }).map(function (t) {
        return el('div', { 'class': 'kv', 'data-kpi': t.key }, t.label + ': ' + t.text + ' ' + t.unit + (t.delta_text ? ' (' + ARROWS[t.trend] + ' ' + t.delta_text + ')' : ''));
      });
      return [el('strong', { text: r.iso_week }), r.week_start, fmtTime(r.generated_at), links, kpis, runLink(r.run_id)];
    }, 'No reports yet: trigger weekly_kpi_report.');
  }

  function loadOutbox() {
    loadTable('outbox', api('GET', '/admin/api/outbox'), 'emails', 'outbox', function (m) {
      return [fmtTime(m.date), m.to, m.subject, el('span', { 'class': 'mono', text: m.file }), Math.ceil(m.bytes / 1024) + ' KiB'];
    }, function (data) { return data && data.configured ? 'The outbox is empty.' : 'No local outbox (EMAIL_OUTBOX_DIR is not set).'; });
  }

  function loadModels() {
    loadTable('models', api('GET', '/admin/api/models'), 'models', 'models', function (m) {
      var metrics = ['roc_auc', 'pr_auc', 'brier', 'ece'].filter(function (k) { return m.metrics && k in m.metrics; }).map(function (k) {
        var cm = m.champion_metrics && k in m.champion_metrics ? ' (champion ' + fmtNumber(m.champion_metrics[k]) + ')' : '';
        return el('div', { 'class': 'kv' }, k + ' ' + fmtNumber(m.metrics[k]) + cm);
      });
      var dep = (m.deployments || []).map(function (d) { return el('div', null, d.engine + (d.active ? ' (active)' : '') + ' ' + fmtTime(d.deployed_at)); });
      var status = m.champion ? badge('champion') : m.shadow ? badge('shadow') : (m.promoted ? 'promoted' : 'not promoted');
      return [el('span', { 'class': 'mono', text: m.version }), m.kind, fmtTime(m.created_at), status,
        metrics, (m.compared_with ? 'vs ' + m.compared_with + ': ' : '') + (m.gate_reason || '—'),
        dep.length ? dep : '—', runLink(m.run_id)];
    }, 'No models yet: trigger etl_ml_training.');
  }

  // ---- charts, dashboard, monitoring, alerts ---------------------------------

  // chart adopts a chart's SVG, which control draws with every datum
  // escaped; it is parsed as XML (image/svg+xml: nothing in it runs).
  function chart(c) {
    var doc = new DOMParser().parseFromString(c.svg, 'image/svg+xml');
    var root = doc.documentElement;
    if (root.namespaceURI !== SVG || doc.getElementsByTagName('parsererror').length) {
      return el('p', { 'class': 'error', text: 'Could not draw the chart ' + c.title + '.' });
    }
    return el('figure', { 'class': 'chart', 'data-chart': c.id, 'data-points': c.points }, document.importNode(root, true));
  }

  var ARROWS = { up: '↑', down: '↓', flat: '→' };
  var VERDICTS = { good: 'better', bad: 'worse', neutral: 'unchanged' };

  // tile is a KPI tile: its value and unit, and its change from the figure
  // before (t.against) coloured by whether that is better or worse.
  function tile(t) {
    var change = t.delta_text
      ? el('p', { 'class': 'delta ' + t.verdict, title: 'change from ' + t.against + ': ' + VERDICTS[t.verdict] },
        ARROWS[t.trend] + ' ' + t.delta_text + ' ', el('span', { 'class': 'muted', text: 'vs ' + t.against + ' (' + VERDICTS[t.verdict] + ')' }))
      : el('p', { 'class': 'delta muted', text: t.value === null ? 'no figure yet' : 'no earlier figure' });
    return el('article', { 'class': 'tile ' + (t.verdict || 'none'), 'data-kpi': t.key },
      el('h3', { text: t.label }),
      el('p', { 'class': 'value' }, el('span', { 'class': 'num', text: t.text }), ' ', el('span', { 'class': 'unit', text: t.unit })),
      change);
  }

  function alertBadge(a) { return el('span', { 'class': 'severity ' + a.severity, text: a.severity }); }

  // loadOverview fills the dashboard's KPI tiles, trend charts, riskiest
  // vehicles and open alerts.
  function loadOverview() {
    var gen = state.generation;
    api('GET', '/admin/api/dashboard').then(function (d) {
      if (gen !== state.generation) return;
      showError('dashboard-error', '');
      $('dashboard-week').textContent = d.week ? '· week ' + d.week + (d.previous_week ? ' against ' + d.previous_week : '') : '';
      $('dashboard-no-report').hidden = !!d.week;
      append(clear($('kpi-tiles')), (d.tiles || []).map(tile));
      append(clear($('trend-charts')), d.week ? (d.charts || []).map(chart) : []);
      fill('riskiest', d.riskiest || [], function (v) {
        return [el('span', { title: v.name, text: v.asset_tag }), v.vehicle_type, badge(v.risk_level),
          v.failure_probability.toFixed(3), fmtTime(v.predicted_at)];
      }, 'No model predictions yet: run etl_ml_training.');
      fill('open-alerts', d.alerts || [], function (a) {
        return [alertBadge(a), a.summary, fmtTime(a.opened_at) + ' (' + a.opened_period + ')'];
      }, 'No open alerts.');
    }, function (err) { showError('dashboard-error', 'Could not load the dashboard: ' + errText(err)); });
  }

  // COMPARISON are the side-by-side rows of the shadow against the champion.
  var COMPARISON = [
    ['Model', function (p) { return el('span', { 'class': 'mono', text: p.model_version }); }],
    ['Scoring of', function (p) { return p.snapshot_date + ' (' + p.label_window_days + '-day label window)'; }],
    ['Vehicles labelled (failed)', function (p) { return p.labelled + ' (' + p.positives + ')'; }],
    ['Realized ROC AUC', function (p) { return p.roc_auc === null ? 'n/a (one class only)' : p.roc_auc.toFixed(3); }],
    ['Precision of "critical"', function (p) { return p.critical_precision === null ? 'n/a (none critical)' : p.critical_precision.toFixed(3); }]
  ];

  function loadMonitoring() {
    api('GET', '/admin/api/monitoring').then(function (m) {
      showError('monitoring-error', '');
      var runs = m.performance.points ? chart(m.performance) : el('p', { 'class': 'empty', text: 'No realized performance yet: model_monitoring measures it once the label window of a scoring has passed.' });
      append(clear($('performance-chart')), runs);
      append(clear($('drift-chart')), m.drift ? chart(m.drift) : el('p', { 'class': 'empty', text: 'No drift measured yet: run etl_ml_training (its model keeps a training profile), then model_monitoring.' }));
      var byRole = {};
      (m.comparison || []).forEach(function (p) { byRole[p.role] = p; });
      $('comparison-run').textContent = m.comparison.length ? '· monitoring run ' + m.comparison[0].run_id : '';
      fill('comparison', m.comparison.length ? COMPARISON : [], function (row) {
        return [row[0], byRole.champion ? row[1](byRole.champion) : '—', byRole.shadow ? row[1](byRole.shadow) : 'no shadow'];
      }, 'No monitoring run yet: run model_monitoring.');
      fill('retrains', m.retrains || [], function (t) {
        return [fmtTime(t.triggered_at), el('span', { 'class': 'mono', text: t.model_version }), t.reason, runLink(t.retrain_run_id), runLink(t.monitor_run_id)];
      }, 'No retraining triggered.');
    }, function (err) { showError('monitoring-error', 'Could not load the monitoring: ' + errText(err)); });
  }

  function loadAlerts() {
    var st = $('alerts-status').value;
    loadTable('alerts', api('GET', '/admin/api/alerts' + (st ? '?status=' + encodeURIComponent(st) : '')), 'alerts', 'alerts', function (a) {
      var metric = a.metric ? a.metric + (a.value !== null ? ' = ' + fmtNumber(a.value) : '') + (a.threshold !== null ? ' (threshold ' + fmtNumber(a.threshold) + ')' : '') : '—';
      return [fmtTime(a.opened_at), el('span', { 'class': 'state ' + (a.status === 'open' ? 'failed' : 'success'), text: a.status }),
        alertBadge(a), a.kind, el('span', { 'class': 'mono', text: a.rule }), a.summary, metric,
        a.opened_period + (a.resolved_period ? ' → ' + a.resolved_period : ''), a.resolved_at ? fmtTime(a.resolved_at) : '—'];
    }, st ? 'No ' + st + ' alerts.' : 'No alerts yet: the notifier opens them when a rule breaches, drift is detected or a run fails.');
  }

  // ---- start -------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', function () {
    $('login').addEventListener('submit', login);
    $('logout').addEventListener('click', function () { logout(''); });
    $('runs-pipeline').addEventListener('change', runsFilterChanged);
    $('runs-state').addEventListener('change', runsFilterChanged);
    $('runs-newer').addEventListener('click', function () { runsPage(-1); });
    $('runs-older').addEventListener('click', function () { runsPage(1); });
    $('inbox-filter').addEventListener('submit', function (ev) { ev.preventDefault(); loadInbox(); });
    $('alerts-status').addEventListener('change', loadAlerts);
    window.addEventListener('hashchange', route);
    if (state.token) enter(); else $('token').focus();
  });
})();
