// The page's glue: inputs -> the wasm module (nadaraya-wasm) -> canvas and DOM. No number shown
// is computed here; JavaScript only converts between pixels and data coordinates, picks which
// point is under the pointer, and formats the module's numbers.

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): valid only with simd128.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1,
  0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

const BUF = { X: 0, Y: 1, GRID: 2, YG: 3, YD: 4, AG: 5, AD: 6, RF: 7, RFX: 8, SUMMARY: 9 };
const TEXT = { ERROR: 0, SCENARIOS: 1, SUMMARY: 2, FEATURES: 3 };
const COLORS = { gauss: '#2563eb', dot: '#ea7317', rf: '#16a34a', query: '#b4236b', ink: '#1d2330',
  grid: '#eceff4', axis: '#9aa3b2', muted: '#5d6677' };
// The random-feature curve follows a drag live while it is this cheap (samples × features).
const RF_LIVE = 1 << 18;

const param = new URLSearchParams(location.search).get('build');
const simd = param ? param === 'simd' : WebAssembly.validate(SIMD_PROBE);
const build = simd ? 'simd' : 'base';
const bytes = await (await fetch(`pkg/nadaraya_wasm.${build}.wasm`)).arrayBuffer();
const { instance } = await WebAssembly.instantiate(bytes, {});
const w = instance.exports;

// Address and length first: a call may grow the memory and detach an older `memory.buffer`.
const f32 = (id) => {
  const ptr = w.nw_buffer(id), len = w.nw_buffer_len(id);
  return new Float32Array(w.memory.buffer, ptr, len);
};
const text = (id) => {
  const ptr = w.nw_text(id), len = w.nw_text_len(id);
  return new TextDecoder().decode(new Uint8Array(w.memory.buffer, ptr, len));
};
const scenarios = text(TEXT.SCENARIOS).split('\n');
const summaryNames = text(TEXT.SUMMARY).split(',');
const features = text(TEXT.FEATURES).split(',');
const summary = () => {
  const v = f32(BUF.SUMMARY);
  return Object.fromEntries(summaryNames.map((n, i) => [n, v[i]]));
};

const $ = (s) => document.querySelector(s);
const inputs = { h: $('#h'), tau: $('#tau'), xq: $('#xq'), m: $('#m'), unit: $('#unit') };
const status = $('#status');
// The message of the last rejected input (a sample not added, a value refused), kept until the
// next input is accepted, and of the first failed computation of the current frame.
let inputError = '';
let error = '';
let rfStale = true;
let dirty = false;
let dragging = null;
const frames = { compute: [], work: [], stamps: [] };

$('#build').textContent = simd ? 'SIMD build, simd128' : 'baseline build, no SIMD';

// An input call: keeps its error message, clears it on success.
function call(rc) {
  inputError = rc === 0 ? '' : text(TEXT.ERROR);
  return rc;
}

// A computation of this frame: the first failure's message is the one shown.
function compute(rc) {
  if (rc !== 0 && !error) error = text(TEXT.ERROR);
}

function schedule(rf = true) {
  if (rf) rfStale = true;
  if (!dirty) {
    dirty = true;
    requestAnimationFrame(frame);
  }
}

function frame(stamp) {
  dirty = false;
  const t0 = performance.now();
  error = '';
  compute(w.nw_compute());
  const s0 = summary();
  if (rfStale && (!dragging || s0.n * s0.m <= RF_LIVE)) {
    compute(w.nw_compute_rf());
    rfStale = false;
  }
  const t1 = performance.now();
  const s = summary();
  draw(s);
  show(s);
  const t2 = performance.now();
  frames.compute.push(t1 - t0);
  frames.work.push(t2 - t0);
  frames.stamps.push(stamp);
}

// ---- DOM readouts: every value is the module's ----
function fmt(v, el) {
  if (!Number.isFinite(v)) return '–';
  if (el.hasAttribute('data-int')) return String(Math.round(v));
  if (el.hasAttribute('data-percent')) return `${(v * 100).toFixed(1)}%`;
  return v.toFixed(Number(el.dataset.digits ?? 4));
}

function show(s) {
  for (const el of document.querySelectorAll('[data-key]')) el.textContent = fmt(s[el.dataset.key], el);
  const message = inputError || error;
  status.textContent = message || (s.unit ? `unit-normalised, τ = h² = ${s.tau.toFixed(4)}` : 'ok');
  status.classList.toggle('error', !!message);
  // Sliders follow the module (after a scenario or a rejected value), except the one in use.
  inputs.xq.min = s.x_lo;
  inputs.xq.max = s.x_hi;
  for (const [k, key] of [['h', 'h'], ['tau', 'tau'], ['xq', 'x_q']]) {
    if (document.activeElement !== inputs[k]) inputs[k].value = s[key];
  }
  if (document.activeElement !== inputs.m) inputs.m.value = features.indexOf(String(s.m));
  inputs.tau.disabled = s.unit !== 0;
  inputs.unit.checked = s.unit !== 0;
}

// ---- drawing ----
function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth;
  const cssH = Number(canvas.getAttribute('height'));
  if (canvas.width !== Math.round(cssW * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    canvas.style.height = `${cssH}px`;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  return { ctx, W: cssW, H: cssH };
}

const PAD = { l: 40, r: 12, t: 10, b: 24 };

function axes(ctx, W, H, xr, yr, yTicks) {
  const sx = (x) => PAD.l + (x - xr[0]) / (xr[1] - xr[0]) * (W - PAD.l - PAD.r);
  const sy = (y) => H - PAD.b - (y - yr[0]) / (yr[1] - yr[0]) * (H - PAD.t - PAD.b);
  ctx.font = '11px system-ui, "DejaVu Sans", sans-serif';
  ctx.lineWidth = 1;
  ctx.fillStyle = COLORS.muted;
  ctx.textAlign = 'center';
  for (let x = Math.ceil(xr[0]); x <= xr[1]; x++) {
    ctx.strokeStyle = x === 0 ? COLORS.axis : COLORS.grid;
    ctx.beginPath(); ctx.moveTo(sx(x), PAD.t); ctx.lineTo(sx(x), H - PAD.b); ctx.stroke();
    ctx.fillText(String(x), sx(x), H - PAD.b + 15);
  }
  ctx.textAlign = 'right';
  for (const y of yTicks) {
    ctx.strokeStyle = y === 0 ? COLORS.axis : COLORS.grid;
    ctx.beginPath(); ctx.moveTo(PAD.l, sy(y)); ctx.lineTo(W - PAD.r, sy(y)); ctx.stroke();
    ctx.fillText(String(y), PAD.l - 6, sy(y) + 4);
  }
  return { sx, sy };
}

function curve(ctx, sx, sy, xs, ys, color, width, dash = []) {
  if (ys.length !== xs.length || ys.length === 0) return;
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  ctx.beginPath();
  for (let i = 0; i < xs.length; i++) (i ? ctx.lineTo : ctx.moveTo).call(ctx, sx(xs[i]), sy(ys[i]));
  ctx.stroke();
  ctx.setLineDash([]);
}

function points(ctx, sx, sy, x, y, n, highlight) {
  const r = n > 300 ? 1.6 : 4.5;
  ctx.fillStyle = n > 300 ? 'rgba(29,35,48,0.35)' : COLORS.ink;
  ctx.beginPath();
  for (let i = 0; i < x.length; i++) {
    ctx.moveTo(sx(x[i]) + r, sy(y[i]));
    ctx.arc(sx(x[i]), sy(y[i]), r, 0, 2 * Math.PI);
  }
  ctx.fill();
  if (highlight !== null && highlight < x.length) {
    ctx.strokeStyle = COLORS.query;
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(sx(x[highlight]), sy(y[highlight]), 8, 0, 2 * Math.PI); ctx.stroke();
  }
}

function queryLine(ctx, sx, H, xq, label) {
  ctx.strokeStyle = COLORS.query;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([5, 4]);
  ctx.beginPath(); ctx.moveTo(sx(xq), PAD.t); ctx.lineTo(sx(xq), H - PAD.b); ctx.stroke();
  ctx.setLineDash([]);
  if (label) {
    ctx.fillStyle = COLORS.query;
    ctx.beginPath();
    ctx.moveTo(sx(xq) - 6, PAD.t); ctx.lineTo(sx(xq) + 6, PAD.t); ctx.lineTo(sx(xq), PAD.t + 8);
    ctx.fill();
    ctx.font = 'italic 13px "DejaVu Serif", Georgia, serif';
    ctx.textAlign = 'left';
    ctx.fillText('x', sx(xq) + 7, PAD.t + 13);
    ctx.font = 'italic 10px "DejaVu Serif", Georgia, serif';
    ctx.fillText('q', sx(xq) + 14, PAD.t + 17);
  }
}

const view = {};

function draw(s) {
  const x = f32(BUF.X), y = f32(BUF.Y), grid = f32(BUF.GRID);
  const xr = [s.x_lo, s.x_hi], yr = [s.y_lo, s.y_hi];
  const yTicks = [];
  for (let t = Math.ceil(yr[0]); t <= yr[1]; t++) yTicks.push(t);

  // Prediction
  {
    const { ctx, W, H } = setup($('#plot'));
    const { sx, sy } = axes(ctx, W, H, xr, yr, yTicks);
    Object.assign(view, { sx, sy, W, H, xr, yr });
    queryLine(ctx, sx, H, s.x_q, true);
    points(ctx, sx, sy, x, y, s.n, dragging?.kind === 'point' ? dragging.i : null);
    curve(ctx, sx, sy, grid, f32(BUF.YG), COLORS.gauss, 2.4);
    // Dashed where the two coincide (unit-normalised points, τ = h²), so both stay visible.
    curve(ctx, sx, sy, grid, f32(BUF.YD), COLORS.dot, 2.4, s.unit ? [7, 5] : []);
    // ŷ(x_q) markers
    for (const [v, c] of [[s.y_gauss, COLORS.gauss], [s.y_dot, COLORS.dot]]) {
      if (!Number.isFinite(v) || error) continue;
      ctx.fillStyle = '#fff'; ctx.strokeStyle = c; ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.arc(sx(s.x_q), sy(v), 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
  }
  // Weights: a Gaussian and a softmax-dot bar at each x_i
  {
    const { ctx, W, H } = setup($('#weights'));
    const top = Math.max(s.max_gauss, s.max_dot, 1e-6);
    // Axis furniture: the largest of these steps that fits under the tallest bar, twice if it can.
    const stepTick = [1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005].find((t) => t <= top) ?? 0.0005;
    const ticks = 2 * stepTick <= top ? [0, stepTick, 2 * stepTick] : [0, stepTick];
    const ar = [0, top * 1.08];
    const { sx, sy } = axes(ctx, W, H, xr, ar, ticks);
    view.wsx = sx;
    queryLine(ctx, sx, H, s.x_q, false);
    const ag = f32(BUF.AG), ad = f32(BUF.AD);
    const bw = s.n > 300 ? 1.2 : s.n > 60 ? 3 : 7;
    for (const [a, c, off] of [[ag, COLORS.gauss, -bw * 0.55], [ad, COLORS.dot, bw * 0.55]]) {
      ctx.fillStyle = c;
      ctx.globalAlpha = s.n > 300 ? 0.6 : 0.95;
      for (let i = 0; i < a.length; i++) {
        const px = sx(x[i]) + off - bw / 2;
        ctx.fillRect(px, sy(a[i]), bw, sy(0) - sy(a[i]));
      }
      ctx.globalAlpha = 1;
    }
  }
  // Random features against exact
  {
    const { ctx, W, H } = setup($('#rfplot'));
    const { sx, sy } = axes(ctx, W, H, xr, yr, yTicks);
    points(ctx, sx, sy, x, y, Math.max(s.n, 301), null);
    curve(ctx, sx, sy, grid, f32(BUF.RF), COLORS.rf, 2.4);
    curve(ctx, sx, sy, grid, f32(BUF.RFX), COLORS.ink, 1.8, [6, 4]);
  }
}

// ---- interaction ----
const plot = $('#plot');

function toData(ev) {
  const r = plot.getBoundingClientRect();
  const px = ev.clientX - r.left, py = ev.clientY - r.top;
  const { W, H, xr, yr } = view;
  const x = xr[0] + (px - PAD.l) / (W - PAD.l - PAD.r) * (xr[1] - xr[0]);
  const y = yr[0] + (H - PAD.b - py) / (H - PAD.t - PAD.b) * (yr[1] - yr[0]);
  const clamp = (v, [a, b]) => Math.min(Math.max(v, a), b);
  return { px, py, x: clamp(x, xr), y: clamp(y, yr) };
}

function nearest(px, py, radius) {
  const x = f32(BUF.X), y = f32(BUF.Y);
  let best = -1, bd = radius * radius;
  for (let i = 0; i < x.length; i++) {
    const dx = view.sx(x[i]) - px, dy = view.sy(y[i]) - py;
    if (dx * dx + dy * dy <= bd) { bd = dx * dx + dy * dy; best = i; }
  }
  return best;
}

plot.addEventListener('pointerdown', (ev) => {
  const p = toData(ev);
  const i = nearest(p.px, p.py, 9);
  if (i >= 0) dragging = { kind: 'point', i };
  else if (Math.abs(view.sx(summary().x_q) - p.px) < 7) dragging = { kind: 'query' };
  else dragging = { kind: 'add', px: p.px, py: p.py };
  try { plot.setPointerCapture(ev.pointerId); } catch { /* a synthetic pointer */ }
});
plot.addEventListener('pointermove', (ev) => {
  if (!dragging) {
    const p = toData(ev);
    plot.style.cursor = nearest(p.px, p.py, 9) >= 0 ? 'grab'
      : Math.abs(view.sx(summary().x_q) - p.px) < 7 ? 'ew-resize' : 'crosshair';
    return;
  }
  const p = toData(ev);
  if (dragging.kind === 'point') call(w.nw_set_point(dragging.i, p.x, p.y));
  else if (dragging.kind === 'query') call(w.nw_set_x_q(p.x));
  else return;
  schedule(dragging.kind === 'point');
});
plot.addEventListener('pointerup', (ev) => {
  const p = toData(ev);
  if (dragging?.kind === 'add' && Math.hypot(p.px - dragging.px, p.py - dragging.py) < 4) call(w.nw_push(p.x, p.y));
  dragging = null;
  schedule();
});
plot.addEventListener('dblclick', (ev) => {
  const p = toData(ev);
  const i = nearest(p.px, p.py, 9);
  if (i >= 0) call(w.nw_remove(i));
  schedule();
});
$('#weights').addEventListener('pointermove', (ev) => {
  if (ev.buttons !== 1) return;
  const r = ev.currentTarget.getBoundingClientRect();
  const { W, xr } = view;
  call(w.nw_set_x_q(xr[0] + (ev.clientX - r.left - PAD.l) / (W - PAD.l - PAD.r) * (xr[1] - xr[0])));
  schedule(false);
});

inputs.h.addEventListener('input', () => { call(w.nw_set_h(parseFloat(inputs.h.value))); schedule(); });
inputs.tau.addEventListener('input', () => { call(w.nw_set_tau(parseFloat(inputs.tau.value))); schedule(); });
inputs.xq.addEventListener('input', () => { call(w.nw_set_x_q(parseFloat(inputs.xq.value))); schedule(false); });
inputs.m.addEventListener('input', () => { call(w.nw_set_feature_index(Number(inputs.m.value))); schedule(); });
inputs.unit.addEventListener('change', () => { call(w.nw_set_unit(inputs.unit.checked ? 1 : 0)); schedule(); });

function scenario(name) {
  const i = scenarios.indexOf(name);
  call(w.nw_scenario(i));
  for (const b of document.querySelectorAll('[data-scenario]')) b.classList.toggle('active', b.dataset.scenario === name);
  $('#caption').innerHTML = $(`#captions [data-for="${name}"]`)?.innerHTML ?? '';
  schedule();
}
for (const b of document.querySelectorAll('[data-scenario]')) b.addEventListener('click', () => scenario(b.dataset.scenario));
for (const b of document.querySelectorAll('[data-load]')) {
  b.addEventListener('click', () => { call(w.nw_load(Number(b.dataset.load))); schedule(); });
}

// Moves x_q across the view over two seconds (an input, like the slider).
let sweep = null;
$('[data-sweep]').addEventListener('click', () => {
  if (sweep) { cancelAnimationFrame(sweep); sweep = null; return; }
  const { x_lo, x_hi } = summary();
  const start = performance.now();
  const step = (t) => {
    const u = Math.min((t - start) / 2000, 1);
    call(w.nw_set_x_q(x_lo + u * (x_hi - x_lo)));
    schedule(false);
    sweep = u < 1 ? requestAnimationFrame(step) : null;
  };
  sweep = requestAnimationFrame(step);
});
window.addEventListener('resize', () => schedule(false));

// For scripts/page --check: the module's arrays as drawn, where a point is on screen, timings.
window.nw = {
  build,
  ready: false,
  frames,
  summary,
  array: (id) => Array.from(f32(id)),
  BUF,
  error: () => error,
  inputError: () => inputError,
  pointOnScreen(i) {
    const r = plot.getBoundingClientRect();
    const x = f32(BUF.X), y = f32(BUF.Y);
    return { x: r.left + view.sx(x[i]), y: r.top + view.sy(y[i]) };
  },
  queryOnScreen() {
    const r = plot.getBoundingClientRect();
    return { x: r.left + view.sx(summary().x_q), y: r.top + 40 };
  },
  idle: () => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res))),
};

scenario('default');
requestAnimationFrame(() => requestAnimationFrame(() => { window.nw.ready = true; }));
