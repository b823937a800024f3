"use strict";
// The demo page: plain JS, no build step. Everything it does is one API call away.
// The DOM is built with text APIs only (createElement, textContent): data from the API
// (track titles, user ids, error messages) is never parsed as HTML. The server's CSP
// forbids inline script and style, so nothing here may rely on them.
const $ = (id) => document.getElementById(id);
const log = (msg) => { $("log").textContent = `${new Date().toLocaleTimeString()} ${msg}\n` + $("log").textContent; };
const euros = (cents) => (cents / 100).toFixed(2) + " €";

// el("td", { className: "x" }, "text", child): an element with properties and children
// (strings become text nodes).
function el(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props || {});
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// ---- session ------------------------------------------------------------------------
const session = { user: null, role: null, csrf: null };

async function api(method, path, body) {
  const headers = {};
  if (body) headers["content-type"] = "application/json";
  if (session.csrf && method !== "GET") headers["x-csrf-token"] = session.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `${response.status} ${text}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showSession() {
  $("whoami").textContent = session.user || "nobody";
  $("role").textContent = session.role ? `(${session.role})` : "";
  $("logout").hidden = !session.user;
  $("login-form").hidden = Boolean(session.user);
}

async function login(user, password) {
  $("login-error").textContent = "";
  const answer = await api("POST", "/api/v1/auth/login", { user_id: user, password });
  Object.assign(session, { user: answer.user_id, role: answer.role, csrf: answer.csrf_token });
  $("login-password").value = "";
  showSession();
  log(`logged in as ${answer.user_id} (${answer.role})`);
  await loadTracks();
  return answer;
}

async function logout() {
  await api("POST", "/api/v1/auth/logout");
  Object.assign(session, { user: null, role: null, csrf: null });
  showSession();
  $("orders").replaceChildren();
  $("order").replaceChildren();
  log("logged out");
  await loadTracks();
}

async function whoAmI() {
  try {
    const me = await api("GET", "/api/v1/auth/me");
    Object.assign(session, { user: me.user_id, role: me.role, csrf: me.csrf_token });
  } catch (err) {
    if (err.status !== 401) log(`session: ${err.message}`);
  }
  showSession();
}

// ---- playback -------------------------------------------------------------------
const player = $("player");
let hls = null;

async function explainFailure(url) {
  // <audio> does not say why it failed: ask the URL ourselves and show a real message.
  try {
    const response = await fetch(url);
    if (response.status === 401) return "Log in to play this track.";
    if (response.status === 403) {
      const text = await response.text();
      if (/buy this track/i.test(text)) return "Buy this track to play it.";
      const expired = /expire/i.test(text);
      return expired ? "This link has expired. Press Play again for a fresh one."
                     : "This link is not valid (403). Press Play again for a fresh one.";
    }
    if (!response.ok) return `The track could not be loaded (${response.status}).`;
  } catch (err) { return `The track could not be loaded: ${err.message}`; }
  return "The track could not be played by this browser.";
}

player.addEventListener("error", async () => {
  const url = player.currentSrc || player.src;
  $("player-error").textContent = await explainFailure(url);
  log(`player error: ${$("player-error").textContent}`);
});
player.addEventListener("playing", () => { $("player-error").textContent = ""; });

function playUrl(url, label) {
  if (hls) { hls.destroy(); hls = null; }
  $("player-error").textContent = "";
  player.src = url;
  $("now-playing").textContent = label || url;
  return startPlayback(label || url);
}

// hls.js (served by the app at /vendor/hls.min.js) when the browser has Media Source
// Extensions; the browser's own HLS (Safari, iOS) otherwise. Every play() promise is
// caught: a refused autoplay or an unplayable source becomes a message, never an
// uncaught rejection.
const hlsLoaded = new Promise((resolve) => {
  const script = document.createElement("script");
  script.src = "/vendor/hls.min.js";
  script.onload = () => resolve(window.Hls || null);
  script.onerror = () => { log("hls.js is not installed on this server: HLS plays only where the browser plays it natively"); resolve(null); };
  document.head.append(script);
});

function startPlayback(label) {
  return player.play().catch((err) => {
    log(`play: ${err.message}`);
    // a newer source replaced this one, or the source failed: the error event explains it
    if (err.name === "AbortError" || err.name === "NotSupportedError") return;
    $("player-error").textContent = `${label} could not start: ${err.message}`;
  });
}

async function playHls(track) {
  if (hls) { hls.destroy(); hls = null; }
  const src = `/api/v1/tracks/${encodeURIComponent(track.id)}/hls`;
  $("player-error").textContent = "";
  $("now-playing").textContent = `${track.title} (HLS)`;
  const Hls = await hlsLoaded;
  if (Hls && Hls.isSupported()) {
    hls = new Hls();
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) { $("player-error").textContent = `HLS error: ${data.details}`; }
      log(`hls: ${data.details}`);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { startPlayback(track.title); });
    hls.loadSource(src);
    hls.attachMedia(player);
  } else if (player.canPlayType("application/vnd.apple.mpegurl")) {
    player.src = src;
    await startPlayback(track.title);
  } else {
    $("player-error").textContent = "This browser cannot play HLS (no Media Source Extensions and no native HLS): use Play.";
  }
}

// ---- HLS renditions (a background job on the server) --------------------------------
// The page polls /api/v1/hls/status while renditions are being cut and shows it; when
// ffmpeg is missing it says so once. A finished job reloads the tracks (its Play HLS
// button appears).
let hlsPoll = null;
let hlsReady = new Set();

async function refreshHlsStatus() {
  const status = await api("GET", "/api/v1/hls/status");
  $("hls-status").textContent = status.message;
  $("hls-status").className = status.ffmpeg || !status.enabled ? "" : "error";
  const jobs = Object.entries(status.jobs);
  const ready = jobs.filter(([, job]) => job.state === "ready").map(([id]) => id);
  for (const [id, job] of jobs) {
    const cell = document.querySelector(`tr[data-track-id="${CSS.escape(id)}"] .hls-state`);
    if (cell) cell.textContent = job.state === "failed" ? `HLS failed: ${job.detail}` : (job.state === "ready" ? "" : `HLS ${job.state}…`);
  }
  if (ready.some((id) => !hlsReady.has(id))) { hlsReady = new Set(ready); await loadTracks(); }
  const pending = jobs.some(([, job]) => job.state === "queued" || job.state === "running");
  clearTimeout(hlsPoll);
  if (pending) hlsPoll = setTimeout(() => refreshHlsStatus().catch((e) => log(`hls status: ${e.message}`)), 1000);
  return status;
}

// ---- tracks and orders --------------------------------------------------------------
function button(text, className, onclick) {
  const node = el("button", { type: "button", textContent: text, className });
  node.onclick = onclick;
  return node;
}

function renderOrder(order) {
  const refunds = order.refunds.map((r) => `${euros(r.amount)} ${r.status}`).join(", ") || "none";
  const transfers = order.transfers.map((t) => `${euros(t.amount)} ${t.status}`).join(", ") || "none";
  const status = el("strong", { id: "order-status" }, order.status);
  const buttons = [];
  const isBuyer = session.user === order.buyer_id;
  const mayRefund = session.user === order.seller_id || session.role === "admin";
  if (isBuyer && order.status === "pending_payment") buttons.push(button("Pay (sandbox)", "pay", () => pay(order)));
  if (mayRefund && ["paid", "partially_refunded"].includes(order.status)) {
    buttons.push(button("Refund 1.00 €", "refund-part", () => refund(order, 100)));
    buttons.push(button("Refund the rest", "refund-all", () => refund(order, null)));
  }
  $("order").replaceChildren(
    el("p", {}, "Order ", el("code", {}, order.order_id), ": ", status,
       `, ${euros(order.amount)} (captured ${euros(order.captured)}, refunded ${euros(order.refunded)})`),
    el("p", {}, `Buyer ${order.buyer_id}, seller ${order.seller_id}. Refunds: ${refunds}. Seller transfer: ${transfers}.`),
    ...buttons,
  );
  $("order").dataset.orderId = order.order_id;
}

async function refreshOrder(orderId, until) {
  for (let i = 0; i < 40; i++) {
    const order = await api("GET", `/api/v1/orders/${encodeURIComponent(orderId)}`);
    renderOrder(order);
    if (!until || until(order)) return order;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function buy(track) {
  const order = await api("POST", "/api/v1/orders", { track_id: track.id });
  log(`order ${order.order_id}: payment ${order.payment_id} ${order.status}`);
  return refreshOrder(order.order_id);
}

async function pay(order) {
  await api("POST", `/api/v1/sandbox/payments/${encodeURIComponent(order.payment_id)}/confirm`);
  log("paid in the sandbox; waiting for the webhook");
  return refreshOrder(order.order_id, (o) => o.status !== "pending_payment");
}

async function refund(order, amount) {
  try {
    const result = await api("POST", `/api/v1/orders/${encodeURIComponent(order.order_id)}/refunds`, amount ? { amount } : {});
    log(`refund ${result.refund_id}: ${euros(result.amount)} (${result.provider_status} at the PSP)`);
  } catch (err) { log(`refund refused: ${err.message}`); }
  return refreshOrder(order.order_id, (o) => o.refunds.every((r) => r.status !== "pending"));
}

async function loadOrders() {
  const orders = await api("GET", "/api/v1/orders");
  $("orders").replaceChildren(...orders.map((o) => {
    const item = el("li", {}, `${o.track_title} — ${euros(o.amount)} — ${o.status} `,
      button("Open", "open-order", () => refreshOrder(o.order_id).catch((e) => log(e.message))));
    item.dataset.orderId = o.order_id;
    return item;
  }));
  return orders;
}

async function loadTracks() {
  const tracks = await api("GET", "/api/v1/tracks");
  const rows = tracks.map((track) => {
    const cell = el("td");
    cell.append(button("Play", "play", () => playUrl(track.stream_url, track.title)));
    if (track.hls) cell.append(button("Play HLS", "play-hls", () => playHls(track).catch((e) => log(`hls: ${e.message}`))));
    cell.append(el("span", { className: "hls-state" }));
    if (session.user && session.user !== track.owner_id) {
      cell.append(button("Buy", "buy", () => buy(track).catch((e) => log(`buy: ${e.message}`))));
    }
    const row = el("tr", {}, el("td", { className: "title" }, track.title), el("td", {}, track.owner_id),
      el("td", {}, euros(track.price)), cell);
    row.dataset.trackId = track.id;
    return row;
  });
  $("tracks").replaceChildren(...rows);
  return tracks;
}

// ---- chunked upload -----------------------------------------------------------------
async function upload() {
  const file = $("file").files[0];
  if (!file) { $("upload-status").textContent = "Choose a file first."; return; }
  const begin = await api("POST", "/api/v1/uploads", {
    filename: file.name, size: file.size, content_type: file.type || "audio/mpeg",
    title: $("title").value || file.name, chunk_size: 256 * 1024,
  });
  $("progress").max = begin.chunk_count;
  for (let i = 0; i < begin.chunk_count; i++) {
    const chunk = file.slice(i * begin.chunk_size, (i + 1) * begin.chunk_size);
    const response = await fetch(`/api/v1/uploads/${encodeURIComponent(begin.upload_id)}/chunks/${i}`, {
      method: "PUT", body: chunk, credentials: "same-origin", headers: { "x-csrf-token": session.csrf || "" },
    });
    if (!response.ok) throw new Error(`chunk ${i}: ${response.status}`);
    $("progress").value = i + 1;
    $("upload-status").textContent = `${i + 1}/${begin.chunk_count} chunks`;
  }
  const track = await api("POST", `/api/v1/uploads/${encodeURIComponent(begin.upload_id)}/complete`);
  $("upload-status").textContent = `uploaded: ${track.title}`;
  $("upload-status").dataset.trackId = track.id;
  log(`uploaded ${track.title} (${track.size} bytes) as ${track.storage_backend}:${track.storage_key}`);
  await loadTracks();
  await refreshHlsStatus();  // its rendition is being cut in the background
  return track;
}

// ---- subscriptions ------------------------------------------------------------------
async function subscribe() {
  const result = await api("POST", "/api/v1/subscriptions", { plan: "creator" });
  $("subscription").textContent = `Subscription ${result.subscription_status}; paying…`;
  await api("POST", `/api/v1/sandbox/payments/${encodeURIComponent(result.payment_id)}/confirm`);
  await eligibility();
}

async function eligibility() {
  if (!session.user) { $("subscription").textContent = "Log in first."; return; }
  const answer = await api("GET", `/api/v1/users/${encodeURIComponent(session.user)}/distribution`);
  $("subscription").textContent = answer.message;
  $("subscription").className = answer.eligible ? "ok" : "error";
}

$("login-form").onsubmit = (event) => {
  event.preventDefault();
  login($("login-user").value, $("login-password").value)
    .catch((e) => { $("login-error").textContent = e.message; });
};
$("logout").onclick = () => logout().catch((e) => log(e.message));
$("upload").onclick = () => upload().catch((e) => { $("upload-status").textContent = e.message; });
$("my-orders").onclick = () => loadOrders().catch((e) => log(e.message));
$("subscribe").onclick = () => subscribe().catch((e) => log(e.message));
$("eligibility").onclick = () => eligibility().catch((e) => log(e.message));
window.veza = { playUrl, playHls, refreshHlsStatus, loadTracks, loadOrders, upload, buy, pay, refund, login, logout, api, session };

whoAmI()
  .then(loadTracks)
  .then((tracks) => log(`${tracks.length} tracks`))
  .then(refreshHlsStatus)
  .catch((e) => log(e.message));
